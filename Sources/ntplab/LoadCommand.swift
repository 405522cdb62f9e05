// Placeholder: `ntplab load` is written by the server work (issue 3).
import ToolSupport
func runLoadCommand(_ arguments: [String]) -> Int32 { printError("ntplab", "load: not built yet"); return 1 }
