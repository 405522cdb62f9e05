// swift-tools-version:6.0
// stratumd, ntpclient and ntplab: an NTPv4 server, a feedforward-clock client and a lab.
// No package dependencies: Glibc and the toolchain only. docs/architecture.md describes the modules.
import PackageDescription

let package = Package(
    name: "stratum",
    products: [
        .executable(name: "stratumd", targets: ["stratumd"]),
        .executable(name: "ntpclient", targets: ["ntpclient"]),
        .executable(name: "ntplab", targets: ["ntplab"]),
        .executable(name: "ntpbench", targets: ["ntpbench"]),
        .library(name: "NTPPacket", targets: ["NTPPacket"]),
        .library(name: "FeedforwardClock", targets: ["FeedforwardClock"]),
        // The reader (and writer) of the published clock, for any Swift program that wants
        // the time ntpclient publishes (docs/published-clock.md).
        .library(name: "PublishedClock", targets: ["PublishedClock"]),
    ],
    targets: [
        // Pure codec: no I/O, no Foundation.
        .target(name: "NTPPacket"),
        // C shim: _GNU_SOURCE declarations (mmsghdr, recvmmsg) and CMSG macros.
        .target(name: "CKernelStamps"),
        // Plain values the kernel layer takes and returns (socket addresses, host clock
        // status, its error): no syscalls, so pure modules can use them.
        .target(name: "KernelValues"),
        // The only place that talks to the kernel (re-exports KernelValues).
        .target(name: "KernelStamps", dependencies: ["CKernelStamps", "KernelValues"]),
        // The C library's elementary functions (exp, log, pow, sin, …) and nothing else, so
        // pure modules need not import Glibc (docs/architecture.md).
        .target(name: "Maths"),
        // The one seeded pseudo-random generator (lab models, tests, benchmarks); maths only.
        .target(name: "Randomness", dependencies: ["Maths"]),
        // Pure estimator and stateless reader.
        .target(name: "FeedforwardClock", dependencies: ["Maths"]),
        // The published clock's layout, writer and stateless reader (docs/published-clock.md).
        .target(name: "PublishedClock", dependencies: ["FeedforwardClock", "KernelStamps"]),
        .target(name: "NTPServer", dependencies: ["NTPPacket", "KernelValues", "KernelStamps"]),
        .target(name: "NTPClient", dependencies: ["NTPPacket", "KernelValues", "KernelStamps", "FeedforwardClock", "PublishedClock", "ToolSupport"]),
        .target(name: "NTPLab", dependencies: ["KernelValues", "NTPPacket", "Maths", "Randomness", "KernelStamps", "FeedforwardClock", "PublishedClock", "NTPServer", "NTPClient", "ToolSupport"]),
        // One option parser and one output vocabulary for the three tools.
        .target(name: "ToolSupport", dependencies: ["NTPPacket", "KernelStamps"]),
        // Counts malloc calls for the allocation benchmarks (interposes malloc; ntpbench only).
        .target(name: "CMallocCounter"),

        .executableTarget(name: "stratumd", dependencies: ["NTPServer", "ToolSupport"]),
        .executableTarget(name: "ntpclient", dependencies: ["NTPClient", "PublishedClock", "ToolSupport"]),
        .executableTarget(name: "ntplab", dependencies: ["NTPLab", "ToolSupport"]),
        .executableTarget(name: "ntpbench", dependencies: ["NTPPacket", "Randomness", "NTPServer", "NTPClient", "FeedforwardClock", "CMallocCounter", "ToolSupport"]),

        .testTarget(name: "PacketTests", dependencies: ["NTPPacket", "Randomness"]),
        .testTarget(name: "ToolSupportTests", dependencies: ["ToolSupport"]),
        .testTarget(name: "KernelStampsTests", dependencies: ["KernelStamps", "Randomness"]),
        .testTarget(name: "FeedforwardClockTests", dependencies: ["FeedforwardClock", "Randomness"]),
        .testTarget(name: "ServerTests", dependencies: ["NTPServer", "NTPPacket"]),
        .testTarget(name: "ClientTests", dependencies: ["NTPClient", "NTPPacket", "FeedforwardClock", "PublishedClock", "KernelStamps", "ToolSupport"]),
        .testTarget(name: "LabTests", dependencies: ["NTPLab", "Randomness", "NTPClient", "FeedforwardClock", "ToolSupport"]),
        .testTarget(name: "LoopbackTests", dependencies: ["NTPServer", "NTPClient", "NTPLab", "KernelStamps", "NTPPacket", "PublishedClock", "FeedforwardClock", "Randomness"]),
    ]
)
