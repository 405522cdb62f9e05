// The offset fit's arithmetic (docs/feedforward.md §6): weighted sums over a window of stamps,
// and the line and parabola they define at the newest stamp. Plain values, no allocation.

/// One fitted estimate at now: offset (ns) and slope (ns per s) with standard errors.
struct FitLine {
    var offset = 0.0, offsetError = Double.infinity, slope = 0.0, slopeError = Double.infinity
    /// Smallest excess RTT among the window's stamps, ns: the fit is no better than its best stamp.
    var smallestExcessNanoseconds = Double.infinity
}

/// Weighted sums for a straight-line or parabola fit of y against x (§6), x in seconds
/// before the newest stamp, y in ns.
struct FitSums {
    var count = 0
    var smallestExcessNanoseconds = Double.infinity
    var s0 = 0.0, s1 = 0.0, s2 = 0.0, s3 = 0.0, s4 = 0.0, sy = 0.0, sxy = 0.0, sx2y = 0.0

    mutating func add(x: Double, y: Double, weight w: Double, excessNanoseconds: Double) {
        count += 1
        smallestExcessNanoseconds = min(smallestExcessNanoseconds, excessNanoseconds)
        let wx = w * x, wx2 = wx * x
        s0 += w; s1 += wx; s2 += wx2; s3 += wx2 * x; s4 += wx2 * x * x
        sy += w * y; sxy += wx * y; sx2y += wx2 * y
    }

    /// The line's value and slope at x = 0 (now), errors scaled by `scale` (how far the
    /// stamps scatter relative to what their weights say).
    func line(scale: Double) -> FitLine {
        let meanX = s1 / s0
        let suu = s2 - s0 * meanX * meanX
        let meanY = sy / s0
        guard suu > 0 else { return FitLine(offset: meanY, offsetError: (scale / s0).squareRoot()) }
        let slope = (sxy - meanX * sy) / suu
        let u0 = -meanX
        return FitLine(offset: meanY + slope * u0, offsetError: (scale * (1 / s0 + u0 * u0 / suu)).squareRoot(),
                       slope: slope, slopeError: (scale / suu).squareRoot())
    }

    /// The same for y = a + b·u + c·(u² − m₂), u = x − x̄: a parabola follows a rate that
    /// changes steadily, at the price of more noise.
    func parabola(scale: Double) -> FitLine? {
        let m = s1 / s0
        let suu = s2 - s0 * m * m
        let su3 = s3 - 3 * m * s2 + 3 * m * m * s1 - m * m * m * s0
        let su4 = s4 - 4 * m * s3 + 6 * m * m * s2 - 4 * m * m * m * s1 + m * m * m * m * s0
        let m2 = suu / s0
        let sqq = su4 - s0 * m2 * m2 - su3 * su3 / suu * 0   // ⟨q, q⟩ with q = u² − m₂
        let suy = sxy - m * sy
        let su2y = sx2y - 2 * m * sxy + m * m * sy
        let sqy = su2y - m2 * sy
        let det = suu * sqq - su3 * su3
        guard suu > 0, det > 1e-12 * suu * sqq else { return nil }
        // Inverse of [[suu, su3], [su3, sqq]].
        let i11 = sqq / det, i12 = -su3 / det, i22 = suu / det
        let b = i11 * suy + i12 * sqy
        let c = i12 * suy + i22 * sqy
        let u0 = -m
        let q0 = u0 * u0 - m2
        let offset = sy / s0 + b * u0 + c * q0
        let offsetVariance = scale * (1 / s0 + u0 * u0 * i11 + 2 * u0 * q0 * i12 + q0 * q0 * i22)
        let slope = b + 2 * c * u0
        let slopeVariance = scale * (i11 + 4 * u0 * i12 + 4 * u0 * u0 * i22)
        return FitLine(offset: offset, offsetError: max(offsetVariance, 0).squareRoot(),
                       slope: slope, slopeError: max(slopeVariance, 0).squareRoot())
    }
}
