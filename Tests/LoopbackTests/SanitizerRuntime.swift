#if canImport(Glibc)
import Glibc
#endif

/// Which sanitizer runtime, if any, this test process was built with (`swift test
/// --sanitize=address|thread`), found by looking up the runtime's entry symbol.
///
/// Live accuracy tests read it to scale their *timing* limits: instrumented code runs several
/// times slower, so the time between the server reading its clock and the packet leaving (and
/// the relay's hops) grows, and with it the path asymmetry every client must absorb. Bound
/// honesty is never scaled: the published maxError must hold however slow the code runs.
enum SanitizerRuntime: String {
    case address, thread

    static let active: SanitizerRuntime? = {
        guard let program = dlopen(nil, RTLD_LAZY) else { return nil }
        defer { dlclose(program) }
        if dlsym(program, "__tsan_init") != nil { return .thread }
        if dlsym(program, "__asan_init") != nil { return .address }
        return nil
    }()
}
