// Placeholder: `ntplab simulate` is written by the lab work (issue 5).
import ToolSupport
func runSimulateCommand(_ arguments: [String]) -> Int32 { printError("ntplab", "simulate: not built yet"); return 1 }
