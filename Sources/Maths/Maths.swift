#if canImport(Glibc)
import Glibc
#endif

// The C library's elementary functions, and nothing else from it: pure modules import Maths
// instead of Glibc, so the only modules that can reach a system call are KernelStamps and the
// executables (docs/architecture.md, "Rooms and the syscall rule"). Each wrapper is inlined
// into its caller, so it costs what the C call costs. Square roots need no wrapper:
// `Double.squareRoot()` is the standard library's.

/// e^x.
@inlinable public func exp(_ x: Double) -> Double { Glibc.exp(x) }
/// 2^x.
@inlinable public func exp2(_ x: Double) -> Double { Glibc.exp2(x) }
/// Natural logarithm.
@inlinable public func log(_ x: Double) -> Double { Glibc.log(x) }
/// Base-2 logarithm.
@inlinable public func log2(_ x: Double) -> Double { Glibc.log2(x) }
/// Base-10 logarithm.
@inlinable public func log10(_ x: Double) -> Double { Glibc.log10(x) }
/// x^y.
@inlinable public func pow(_ x: Double, _ y: Double) -> Double { Glibc.pow(x, y) }
/// Sine of x radians.
@inlinable public func sin(_ x: Double) -> Double { Glibc.sin(x) }
/// Cosine of x radians.
@inlinable public func cos(_ x: Double) -> Double { Glibc.cos(x) }
