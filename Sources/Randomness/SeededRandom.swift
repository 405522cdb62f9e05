import Maths

/// The one seeded pseudo-random generator of the repository: xoshiro256** seeded through
/// SplitMix64. The lab's models, the tests and the benchmarks draw from it.
///
/// Why our own: a scenario, a test or a benchmark must see the same draws for the same seed
/// on every machine and toolchain, which `SystemRandomNumberGenerator` cannot promise (and
/// the standard library's seeded generators do not exist). Each lab model draws from its own
/// *stream* (seed mixed with a stream number) so that changing one model's parameters does
/// not reshuffle the others' draws. Cheap and allocation-free, so a hot loop may use it too.
/// Reference: Blackman & Vigna, "Scrambled linear pseudorandom number generators" (2018).
public struct SeededRandom: RandomNumberGenerator, Sendable {
    @usableFromInline var s0: UInt64
    @usableFromInline var s1: UInt64
    @usableFromInline var s2: UInt64
    @usableFromInline var s3: UInt64
    /// Box–Muller yields normals in pairs; the second one is kept for the next call.
    private var spareNormal: Double?

    /// Seeds the four words from SplitMix64, as the xoshiro authors recommend.
    public init(seed: UInt64, stream: UInt64 = 0) {
        var state = seed ^ (stream &* 0xD1B5_4A32_D192_ED03)
        func splitMix() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(); s1 = splitMix(); s2 = splitMix(); s3 = splitMix()
        if s0 | s1 | s2 | s3 == 0 { s0 = 1 }  // the all-zero state is a fixed point
        spareNormal = nil
    }

    @inlinable public mutating func next() -> UInt64 {
        let result = rotl(s1 &* 5, 7) &* 9
        let t = s1 << 17
        s2 ^= s0
        s3 ^= s1
        s1 ^= s2
        s0 ^= s3
        s2 ^= t
        s3 = rotl(s3, 45)
        return result
    }

    @inlinable @inline(__always) func rotl(_ x: UInt64, _ k: UInt64) -> UInt64 {
        (x << k) | (x >> (64 - k))
    }

    /// Uniform in [0, 1), 53 random bits.
    @inlinable public mutating func uniform() -> Double {
        Double(next() >> 11) * 0x1.0p-53
    }

    /// Uniform in (0, 1]: safe to take the logarithm of.
    @inlinable public mutating func uniformPositive() -> Double {
        (Double(next() >> 11) + 1) * 0x1.0p-53
    }

    /// Uniform in [lower, upper).
    public mutating func uniform(_ lower: Double, _ upper: Double) -> Double {
        lower + (upper - lower) * uniform()
    }

    /// True with probability `probability`.
    public mutating func bernoulli(_ probability: Double) -> Bool {
        probability > 0 && uniform() < probability
    }

    /// Exponential with the given mean (inverse transform).
    public mutating func exponential(mean: Double) -> Double {
        mean > 0 ? -mean * log(uniformPositive()) : 0
    }

    /// Standard normal, Box–Muller.
    public mutating func normal() -> Double {
        if let spare = spareNormal {
            spareNormal = nil
            return spare
        }
        let radius = (-2 * log(uniformPositive())).squareRoot()
        let angle = 2 * Double.pi * uniform()
        spareNormal = radius * sin(angle)
        return radius * cos(angle)
    }

    /// Pareto (type I): at least `scale`, tail index `shape` (heavier as shape → 1).
    public mutating func pareto(scale: Double, shape: Double) -> Double {
        scale * pow(uniformPositive(), -1 / shape)
    }

    /// Lomax (Pareto type II): Pareto shifted to start at zero, the heavy-tailed
    /// queueing excess used by the network model.
    public mutating func lomax(scale: Double, shape: Double) -> Double {
        pareto(scale: scale, shape: shape) - scale
    }

    /// Log-normal: exp of a normal with the given mean and deviation.
    public mutating func logNormal(mu: Double, sigma: Double) -> Double {
        exp(mu + sigma * normal())
    }

    /// Uniform in 0..<bound (bound > 0): an index or a small count.
    public mutating func below(_ bound: Int) -> Int {
        precondition(bound > 0, "below(_:) needs a positive bound")
        return Int(integer(0, Int64(bound) - 1))
    }

    /// Uniform integer in [lower, upper] (inclusive), for nanosecond quantities.
    @inlinable public mutating func integer(_ lower: Int64, _ upper: Int64) -> Int64 {
        guard upper > lower else { return lower }
        let span = UInt64(upper - lower) &+ 1
        if span == 0 { return Int64(bitPattern: next()) }  // the full 64-bit range
        return lower + Int64(next() % span)  // bias < span/2^64: negligible here
    }
}
