#if canImport(Glibc)
import Glibc
#endif
import CKernelStamps  // socket constants: in release builds Glibc alone does not bring them

/// The kernel side of `SocketAddress`: `sockaddr_in`/`sockaddr_in6` conversion, and parsing
/// and resolving text (inet_pton, interface names, getaddrinfo).
extension SocketAddress {
    // MARK: sockaddr conversion (no allocation)

    /// Reads a `sockaddr_in` or `sockaddr_in6`; nil for any other family or a short length.
    public init?(sockaddr pointer: UnsafeRawPointer, length: Int) {
        guard length >= MemoryLayout<sa_family_t>.size else { return nil }
        let familyValue = Int32(pointer.loadUnaligned(as: sa_family_t.self))
        if familyValue == AF_INET, length >= MemoryLayout<sockaddr_in>.size {
            let sin = pointer.loadUnaligned(as: sockaddr_in.self)
            self.init(ipv4: UInt32(bigEndian: sin.sin_addr.s_addr), port: UInt16(bigEndian: sin.sin_port))
        } else if familyValue == AF_INET6, length >= MemoryLayout<sockaddr_in6>.size {
            let sin6 = pointer.loadUnaligned(as: sockaddr_in6.self)
            let (h, l) = withUnsafeBytes(of: sin6.sin6_addr) { raw in
                (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
                 UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
            }
            self.init(ipv6High: h, low: l, port: UInt16(bigEndian: sin6.sin6_port), scopeID: sin6.sin6_scope_id)
        } else {
            return nil
        }
    }

    /// Writes this address as `sockaddr_in`/`sockaddr_in6` into `storage`; returns its length.
    @discardableResult
    public func write(to storage: UnsafeMutablePointer<sockaddr_storage>) -> socklen_t {
        let raw = UnsafeMutableRawPointer(storage)
        switch family {
        case .ipv4:
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = UInt32(truncatingIfNeeded: low).bigEndian
            raw.storeBytes(of: sin, as: sockaddr_in.self)
            return socklen_t(MemoryLayout<sockaddr_in>.size)
        case .ipv6:
            var sin6 = sockaddr_in6()
            sin6.sin6_family = sa_family_t(AF_INET6)
            sin6.sin6_port = port.bigEndian
            sin6.sin6_scope_id = scopeID
            withUnsafeMutableBytes(of: &sin6.sin6_addr) { bytes in
                bytes.storeBytes(of: high.bigEndian, toByteOffset: 0, as: UInt64.self)
                bytes.storeBytes(of: low.bigEndian, toByteOffset: 8, as: UInt64.self)
            }
            raw.storeBytes(of: sin6, as: sockaddr_in6.self)
            return socklen_t(MemoryLayout<sockaddr_in6>.size)
        }
    }

    /// Calls `body` with this address as a `sockaddr` on the stack.
    public func withSockAddr<R>(_ body: (UnsafePointer<sockaddr>, socklen_t) throws -> R) rethrows -> R {
        var storage = sockaddr_storage()
        let length = write(to: &storage)
        return try withUnsafePointer(to: &storage) { pointer in
            try pointer.withMemoryRebound(to: sockaddr.self, capacity: 1) { try body($0, length) }
        }
    }

    static func parseError(_ text: String, _ detail: String) -> KernelError {
        KernelError(operation: "parse address \"\(text)\"", code: 0, detail: detail)
    }

    /// Parses a numeric address with optional port: "127.0.0.1:12300", "127.0.0.1",
    /// "[::1]:123", "[::1]", "::1", "fe80::1%2", "localhost:123" (→ 127.0.0.1). A missing port
    /// means `defaultPort`. Never traps; never does DNS (see `resolve` for host names).
    public init(parsing text: String, defaultPort: UInt16) throws(KernelError) {
        let expected = "expected a.b.c.d[:port], [ipv6][:port], ipv6 without port, or localhost[:port]"
        var host = Substring(text)
        var portText: Substring? = nil
        if host.hasPrefix("[") {
            guard let close = host.firstIndex(of: "]") else { throw SocketAddress.parseError(text, "missing ']'; " + expected) }
            let after = host[host.index(after: close)...]
            host = host[host.index(after: host.startIndex)..<close]
            if !after.isEmpty {
                guard after.hasPrefix(":") else { throw SocketAddress.parseError(text, "unexpected text after ']'; " + expected) }
                portText = after.dropFirst()
            }
            guard host.contains(":") else { throw SocketAddress.parseError(text, "brackets are only for IPv6 addresses; " + expected) }
        } else if let colon = host.firstIndex(of: ":") {
            if host[host.index(after: colon)...].contains(":") {
                // Bare IPv6 without port.
            } else {
                portText = host[host.index(after: colon)...]
                host = host[..<colon]
            }
        }
        var port = defaultPort
        if let portText {
            guard !portText.isEmpty, portText.count <= 5, portText.allSatisfy({ $0 >= "0" && $0 <= "9" }),
                  let value = Int(portText), value <= 65535 else {
                throw SocketAddress.parseError(text, "port must be a number from 0 to 65535")
            }
            port = UInt16(value)
        }
        if host.isEmpty { throw SocketAddress.parseError(text, "missing host; " + expected) }
        if host == "localhost" { self = .loopbackIPv4(port: port); return }
        if let parsed = SocketAddress.parseNumeric(String(host), port: port) { self = parsed; return }
        throw SocketAddress.parseError(text, "not a numeric IPv4/IPv6 address; " + expected)
    }

    static func parseNumeric(_ host: String, port: UInt16) -> SocketAddress? {
        if !host.contains(":") {
            var addr = in_addr()
            guard inet_pton(AF_INET, host, &addr) == 1 else { return nil }
            return SocketAddress(ipv4: UInt32(bigEndian: addr.s_addr), port: port)
        }
        var address = host
        var scope: UInt32 = 0
        if let percent = host.firstIndex(of: "%") {
            address = String(host[..<percent])
            let zone = String(host[host.index(after: percent)...])
            if let number = UInt32(zone) {
                scope = number
            } else {
                scope = if_nametoindex(zone)
                if scope == 0 { return nil }
            }
        }
        var addr6 = in6_addr()
        guard inet_pton(AF_INET6, address, &addr6) == 1 else { return nil }
        let (h, l) = withUnsafeBytes(of: addr6) { raw in
            (UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 0, as: UInt64.self)),
             UInt64(bigEndian: raw.loadUnaligned(fromByteOffset: 8, as: UInt64.self)))
        }
        return SocketAddress(ipv6High: h, low: l, port: port, scopeID: scope)
    }

    /// Like `init(parsing:defaultPort:)` but also accepts host names, resolved with
    /// getaddrinfo(3) (IPv4 preferred unless `preferIPv6`). Not for hot paths.
    public static func resolve(_ text: String, defaultPort: UInt16, preferIPv6: Bool = false) throws(KernelError) -> SocketAddress {
        if let numeric = try? SocketAddress(parsing: text, defaultPort: defaultPort) { return numeric }
        // Split "name:port" (a name never contains ':').
        var name = Substring(text)
        var port = defaultPort
        if let colon = name.lastIndex(of: ":") {
            let portText = name[name.index(after: colon)...]
            guard let value = UInt16(portText) else { throw parseError(text, "port must be a number from 0 to 65535") }
            port = value
            name = name[..<colon]
        }
        guard !name.isEmpty else { throw parseError(text, "missing host name") }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_DGRAM.rawValue)
        hints.ai_family = AF_UNSPEC
        var result: UnsafeMutablePointer<addrinfo>? = nil
        let status = getaddrinfo(String(name), nil, &hints, &result)
        guard status == 0, let first = result else {
            let reason = status != 0 ? String(cString: gai_strerror(status)) : "no address"
            throw KernelError(operation: "resolve \"\(name)\"", code: 0, detail: reason,
                              hint: "check the host name, or give a numeric address")
        }
        defer { freeaddrinfo(first) }
        var chosen: SocketAddress? = nil
        var entry: UnsafeMutablePointer<addrinfo>? = first
        while let current = entry {
            if let addr = current.pointee.ai_addr,
               let parsed = SocketAddress(sockaddr: addr, length: Int(current.pointee.ai_addrlen)) {
                let wanted: Family = preferIPv6 ? .ipv6 : .ipv4
                if parsed.family == wanted { chosen = parsed; break }
                if chosen == nil { chosen = parsed }
            }
            entry = current.pointee.ai_next
        }
        guard let chosen else { throw KernelError(operation: "resolve \"\(name)\"", code: 0, detail: "no IPv4 or IPv6 address") }
        return chosen.withPort(port)
    }
}
