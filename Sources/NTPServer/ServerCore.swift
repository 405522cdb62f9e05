import NTPPacket
import KernelValues

/// Counts of every decision the server makes (plain integers: one `ServerCore` per worker).
public struct ServerCounters: Sendable, Equatable {
    public var received: UInt64 = 0
    /// Responses handed to the kernel (basic + interleaved + kisses), counted by the loop.
    public var answered: UInt64 = 0
    public var interleaved: UInt64 = 0
    public var rateKissesSent: UInt64 = 0
    public var rateLimitedDropped: UInt64 = 0
    public var malformed: UInt64 = 0
    public var controlMode: UInt64 = 0
    public var notClientMode: UInt64 = 0
    public var unsupportedVersion: UInt64 = 0
    /// Datagrams without a kernel RX stamp (a user-space clock read was used instead).
    public var missingReceiveStamp: UInt64 = 0
    /// Kernel TX stamps read back and stored for interleaved mode.
    public var transmitStampsStored: UInt64 = 0
    /// Responses the kernel refused (full send buffer).
    public var sendFailures: UInt64 = 0
    /// Basic-mode responses whose kernel TX stamp was read back and compared with the
    /// transmit timestamp they carry (a sample, see `ServerConfiguration.transmitCheckEveryResponses`).
    public var transmitChecks: UInt64 = 0
    /// Checked responses that claimed a transmit time earlier than the kernel's TX stamp by
    /// more than `ServerConfiguration.transmitBudgetNanoseconds`: the client sees a longer
    /// return path and an offset too low by half the miss.
    public var transmitEarlyMisses: UInt64 = 0
    /// Checked responses that claimed a transmit time later than the kernel's TX stamp by more
    /// than the budget.
    public var transmitLateMisses: UInt64 = 0

    public init() {}

    /// Every counter, so that summing two sets of counters cannot forget one. Computed (key
    /// paths are not Sendable); read only when totals are made, never per packet.
    static var allCounters: [WritableKeyPath<ServerCounters, UInt64>] {
        [\.received, \.answered, \.interleaved, \.rateKissesSent, \.rateLimitedDropped, \.malformed,
         \.controlMode, \.notClientMode, \.unsupportedVersion, \.missingReceiveStamp, \.transmitStampsStored,
         \.sendFailures, \.transmitChecks, \.transmitEarlyMisses, \.transmitLateMisses]
    }

    /// Adds another worker's counters to these (the totals stratumd prints).
    public mutating func add(_ other: ServerCounters) {
        for counter in ServerCounters.allCounters { self[keyPath: counter] &+= other[keyPath: counter] }
    }

    @inline(__always)
    mutating func count(_ reason: DropReason) {
        switch reason {
        case .malformed: malformed &+= 1
        case .controlMode: controlMode &+= 1
        case .notClientMode: notClientMode &+= 1
        case .unsupportedVersion: unsupportedVersion &+= 1
        case .rateLimited: rateLimitedDropped &+= 1
        }
    }

    /// One line, `name=value` pairs, for logs.
    public var summary: String {
        "received=\(received) answered=\(answered) interleaved=\(interleaved) rate-kiss-sent=\(rateKissesSent) "
            + "rate-limited-dropped=\(rateLimitedDropped) malformed=\(malformed) control-mode=\(controlMode) "
            + "not-client-mode=\(notClientMode) bad-version=\(unsupportedVersion) "
            + "no-rx-stamp=\(missingReceiveStamp) tx-stamps=\(transmitStampsStored) send-failed=\(sendFailures) "
            + "tx-checked=\(transmitChecks) tx-early=\(transmitEarlyMisses) tx-late=\(transmitLateMisses)"
    }
}

/// What `ServerCore.handle` decided for one datagram.
public struct HandleOutcome: Sendable, Equatable {
    /// Bytes of response written (48), or 0: send nothing.
    public var length: Int
    public var drop: DropReason?
    /// The transmit field still has to be written just before the send (basic and kiss).
    public var needsTransmitPatch: Bool
    /// The client speaks RFC 9769: the response's kernel TX stamp must be read back and
    /// stored with `ServerCore.storeTransmitStamp(slot:receive:transmitUnixNanoseconds:)`.
    public var wantsTransmitStamp: Bool
    public var kind: ResponseKind?
    /// The client-table slot (for `storeTransmitStamp`), -1 when no slot was touched.
    public var slot: Int
    /// The receive timestamp written in the response (NTP raw).
    public var receiveTimestamp: UInt64

    static func dropped(_ reason: DropReason, slot: Int = -1) -> HandleOutcome {
        HandleOutcome(length: 0, drop: reason, needsTransmitPatch: false, wantsTransmitStamp: false, kind: nil,
                      slot: slot, receiveTimestamp: 0)
    }
}

/// The server's decision core for one worker: responder + client table (rate limit and
/// interleaved state) + counters. Pure: time comes in as arguments, bytes go out into the
/// caller's buffer. Not thread-safe: one per worker.
public final class ServerCore: @unchecked Sendable {
    public var state: ServerState
    /// nil: rate limiting off.
    public let rateLimit: RateLimit?
    public let interleavedEnabled: Bool
    public let clients: ClientTable
    public var counters = ServerCounters()

    public init(state: ServerState, rateLimit: RateLimit? = .standard, interleavedEnabled: Bool = true,
                clientTableCapacity: Int = 65_536, seed: UInt64 = 0x5bd1_e995_9e37_79b9) {
        self.state = state
        self.rateLimit = rateLimit
        self.interleavedEnabled = interleavedEnabled
        clients = ClientTable(capacity: clientTableCapacity, seed: seed)
    }

    /// Decides and writes the answer to one datagram.
    /// - receiveUnixNanoseconds: the kernel RX stamp (CLOCK_REALTIME).
    /// - nowMonotonicNanoseconds: a monotonic reading for the rate limiter (one per batch is
    ///   fine: never a realtime value, which could be stepped).
    /// - response: at least 48 writable bytes.
    @inline(__always)
    public func handle(request: UnsafeRawBufferPointer, source: SocketAddress.Key, receiveUnixNanoseconds: Int64,
                       nowMonotonicNanoseconds: Int64, response: UnsafeMutableRawPointer) -> HandleOutcome {
        handle(request: request, source: source, receiveTimestamp: NTPTimestamp(unixNanoseconds: receiveUnixNanoseconds),
               nowMonotonicNanoseconds: nowMonotonicNanoseconds, response: response)
    }

    /// The same with the RX stamp already in NTP format (e.g. replaying captured exchanges).
    @inline(__always)
    public func handle(request: UnsafeRawBufferPointer, source: SocketAddress.Key, receiveTimestamp receive: NTPTimestamp,
                       nowMonotonicNanoseconds: Int64, response: UnsafeMutableRawPointer) -> HandleOutcome {
        counters.received &+= 1
        let parsed: ExaminedRequest
        switch NTPResponder.examine(request) {
        case .success(let value): parsed = value
        case .failure(let error):
            counters.count(error.reason)
            return .dropped(error.reason)
        }
        let needsSlot = rateLimit != nil || interleavedEnabled
        let slot = needsSlot ? clients.slot(for: source, now: nowMonotonicNanoseconds) : -1
        if let limit = rateLimit {
            switch clients.admit(slot: slot, now: nowMonotonicNanoseconds, limit: limit) {
            case .allow: break
            case .kiss:
                counters.rateKissesSent &+= 1
                let length = NTPResponder.writeResponse(to: parsed, kind: .rateKiss, receiveTimestamp: receive,
                                                        state: state, into: response)
                return HandleOutcome(length: length, drop: nil, needsTransmitPatch: true, wantsTransmitStamp: false,
                                     kind: .rateKiss, slot: slot, receiveTimestamp: receive.rawValue)
            case .drop:
                counters.rateLimitedDropped &+= 1
                return .dropped(.rateLimited, slot: slot)
            }
        }
        var kind = ResponseKind.basic
        var wantsStamp = false
        if interleavedEnabled {
            // RFC 9769: an interleaved request's origin is the receive timestamp of our last
            // response to it; its receive ≠ transmit tells it from a basic client that
            // happens to copy fields (chrony's rule). Only such clients get TX stamps read
            // back: the error queue costs a syscall per stamp.
            let saved = clients.savedTimestamps(slot: slot)
            if saved.receive != 0 && parsed.originTimestamp.rawValue == saved.receive
                && parsed.receiveTimestamp != parsed.transmitTimestamp {
                wantsStamp = true
                if saved.transmit != 0 {
                    kind = .interleaved(previousTransmit: NTPTimestamp(rawValue: saved.transmit))
                    counters.interleaved &+= 1
                }
            }
            clients.saveResponse(slot: slot, receive: receive.rawValue)
        }
        let length = NTPResponder.writeResponse(to: parsed, kind: kind, receiveTimestamp: receive, state: state, into: response)
        return HandleOutcome(length: length, drop: nil, needsTransmitPatch: kind == .basic, wantsTransmitStamp: wantsStamp,
                             kind: kind, slot: slot, receiveTimestamp: receive.rawValue)
    }

    /// Stores the kernel TX stamp of the response that carried `receive` to the client in
    /// `slot`, for that client's next interleaved response.
    @discardableResult
    public func storeTransmitStamp(slot: Int, receive: UInt64, transmitUnixNanoseconds: Int64) -> Bool {
        storeTransmitStamp(slot: slot, receive: receive, transmit: NTPTimestamp(unixNanoseconds: transmitUnixNanoseconds))
    }

    @discardableResult
    public func storeTransmitStamp(slot: Int, receive: UInt64, transmit: NTPTimestamp) -> Bool {
        let stored = clients.saveTransmit(slot: slot, receive: receive, transmit: transmit.rawValue)
        if stored { counters.transmitStampsStored &+= 1 }
        return stored
    }
}
