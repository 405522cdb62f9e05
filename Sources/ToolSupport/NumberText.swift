/// Fixed-point decimal text without Foundation, the one number formatter of the tools'
/// output: `fixedDecimal(1.25, 1)` is "1.3" (half away from zero), `fixedDecimal(-0.0001, 2)`
/// is "0.00". Non-finite values print as "nan", "inf", "-inf"; magnitudes too large for
/// fixed point fall back to Swift's shortest form.
public func fixedDecimal(_ value: Double, _ decimals: Int) -> String {
    guard value.isFinite else { return value.isNaN ? "nan" : (value < 0 ? "-inf" : "inf") }
    let places = max(0, min(decimals, 9))
    var scale: Int64 = 1
    for _ in 0..<places { scale *= 10 }
    let scaled = (abs(value) * Double(scale)).rounded()
    guard scaled < 9.0e18 else { return String(value) }
    let units = Int64(scaled)
    let sign = value < 0 && units != 0 ? "-" : ""
    let whole = String(units / scale)
    guard places > 0 else { return sign + whole }
    var fraction = String(units % scale)
    while fraction.count < places { fraction = "0" + fraction }
    return sign + whole + "." + fraction
}

/// `text` padded with spaces on the left to `width` columns (right-aligned).
public func rightAligned(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : String(repeating: " ", count: width - text.count) + text
}

/// `text` padded with spaces on the right to `width` columns (left-aligned).
public func leftAligned(_ text: String, _ width: Int) -> String {
    text.count >= width ? text : text + String(repeating: " ", count: width - text.count)
}
