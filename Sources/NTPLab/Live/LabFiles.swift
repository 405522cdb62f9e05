import KernelStamps

/// Writes `text` to `path` (created or truncated, mode 0644), for plots and reports.
public func writeTextFile(_ path: String, _ text: String) throws(LabError) {
    do throws(KernelError) { try writeFile(atPath: path, contents: text) } catch {
        throw LabError(error.description)
    }
}
