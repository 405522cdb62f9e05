// Placeholder: `ntplab run` (and the default demo) is written by the lab work (issue 5).
import ToolSupport
func runLiveCommand(_ arguments: [String]) -> Int32 { printError("ntplab", "run: not built yet"); return 1 }
