import FeedforwardClock
import NTPPacket
import ToolSupport

/// What happened to one exchange and the clock right after it: the data of one output line.
/// Pure value; the text and JSON renderings below are the one place their layout is defined.
///
/// Sign conventions (stated in `ntpclient --help`):
/// - naive offset θ_j and θ̂: the uncorrected clock C minus the server (positive: C ahead);
/// - system clock offset: CLOCK_REALTIME − Ca, positive when the system clock is ahead of the
///   feedforward clock. chronyd -Q's "System clock wrong by" is the same quantity with the
///   opposite sign (its positive means the system clock is behind).
public struct ExchangeReport: Sendable, Equatable {
    public enum Outcome: String, Sendable {
        /// The filter used the stamp.
        case accepted
        /// A valid response the filter refused (docs/feedforward.md §2).
        case filterRejected = "filter-rejected"
        /// No valid response before the timeout: the clock runs on, its bound grows.
        case timedOut = "timeout"
        /// A kiss-o'-death answered the request.
        case kiss
        /// A genuine answer that cannot be used (unsynchronised server, zero/reversed stamps).
        case unusableAnswer = "unusable-answer"
    }

    /// 0-based number of the exchange (every attempt counts).
    public var exchange: Int
    public var outcome: Outcome
    /// CLOCK_REALTIME when the line was made (Unix ns).
    public var localTimeUnixNanoseconds: Int64
    /// This exchange's RTT (nil without a response).
    public var rttNanoseconds: Double?
    /// θ_j of this exchange under the published parameters (nil without a response).
    public var naiveOffsetNanoseconds: Double?
    /// The clock after the exchange.
    public var parameters: ClockParameters
    /// maxError aged to the moment of the report (§8.2).
    public var maxErrorNanoseconds: Double
    /// Status at the moment of the report (includes `starving` while it lasts).
    public var status: ClockStatus
    /// CLOCK_REALTIME − Ca, read together at the report (nil while Ca has no estimate).
    public var systemClockOffsetNanoseconds: Double?
    /// The kernel gave no TX / RX stamp and a user-space clock read stood in.
    public var userSpaceTransmitStamp: Bool
    public var userSpaceReceiveStamp: Bool
    /// The server's stratum (0 without a response).
    public var stratum: UInt8
    /// Seconds until the next exchange.
    public var pollSeconds: Double
    /// With several servers: the source this exchange was with (HOST[:PORT] as given), what
    /// the vote made of it, and every source's state after the vote (docs/feedforward.md,
    /// "Several sources"). With one server: nil and empty, and the line is as before.
    public var source: String? = nil
    public var sourceVerdict: SourceVerdict? = nil
    /// Why the combined clock is unsynchronised when the vote found no majority (nil otherwise).
    public var selectionProblem: SelectionOutcome? = nil
    public var sources: [SourceReport] = []

    public init(exchange: Int, outcome: Outcome, localTimeUnixNanoseconds: Int64, rttNanoseconds: Double?,
                naiveOffsetNanoseconds: Double?, parameters: ClockParameters, maxErrorNanoseconds: Double,
                status: ClockStatus, systemClockOffsetNanoseconds: Double?, userSpaceTransmitStamp: Bool,
                userSpaceReceiveStamp: Bool, stratum: UInt8, pollSeconds: Double) {
        self.exchange = exchange
        self.outcome = outcome
        self.localTimeUnixNanoseconds = localTimeUnixNanoseconds
        self.rttNanoseconds = rttNanoseconds
        self.naiveOffsetNanoseconds = naiveOffsetNanoseconds
        self.parameters = parameters
        self.maxErrorNanoseconds = maxErrorNanoseconds
        self.status = status
        self.systemClockOffsetNanoseconds = systemClockOffsetNanoseconds
        self.userSpaceTransmitStamp = userSpaceTransmitStamp
        self.userSpaceReceiveStamp = userSpaceReceiveStamp
        self.stratum = stratum
        self.pollSeconds = pollSeconds
    }

    /// Status words: the filter's (ClockStatus.names), then the stamp fallbacks and outcome.
    public var statusWords: [String] {
        var words = status.words
        if userSpaceTransmitStamp { words.append("user-tx-stamp") }
        if userSpaceReceiveStamp { words.append("user-rx-stamp") }
        if outcome != .accepted { words.append(outcome.rawValue) }
        if let sourceVerdict, sourceVerdict != .selected { words.append("source-" + sourceVerdict.description) }
        switch selectionProblem {
        case .noMajority?: words.append("no-majority")
        case .ambiguous?: words.append("no-majority-ambiguous")
        case .noUsableSource?: words.append("no-usable-source")
        case .synchronised?, nil: break
        }
        return words
    }

    /// The JSON line's fields in order, with units in the key names (house rule).
    public var fields: [JSONMember] {
        let hasEstimate = !parameters.status.contains(.noEstimate)
        var members: [JSONMember] = []
        if let source {
            members.append(JSONMember("source", .string(source)))
            members.append(JSONMember("sourceState", .string(sourceVerdict?.description ?? "unusable")))
        }
        if let selectionProblem { members.append(JSONMember("selection", .string(selectionProblem.description))) }
        if !sources.isEmpty { members.append(JSONMember("sources", .array(sources.map { .object($0.fields) }))) }
        return [
            JSONMember("exchange", .integer(Int64(exchange))),
            JSONMember("time", .string(UTCTimeText.iso8601(unixNanoseconds: localTimeUnixNanoseconds))),
            JSONMember("timeUnixNanoseconds", .integer(localTimeUnixNanoseconds)),
            JSONMember("outcome", .string(outcome.rawValue)),
            JSONMember("stratum", .integer(Int64(stratum))),
            JSONMember("rttNanoseconds", .numberOrNull(rttNanoseconds)),
            JSONMember("minimumRTTNanoseconds", .numberOrNull(hasEstimate ? parameters.minimumRTTNanoseconds : nil)),
            JSONMember("naiveOffsetNanoseconds", .numberOrNull(naiveOffsetNanoseconds)),
            JSONMember("offsetEstimateNanoseconds", .numberOrNull(hasEstimate ? parameters.offsetNanoseconds : nil)),
            JSONMember("periodPPM", .number(parameters.periodOffsetPPM)),
            JSONMember("periodErrorPPM", .number(parameters.periodErrorPPM)),
            JSONMember("errorEstimateNanoseconds", .numberOrNull(hasEstimate ? parameters.errorEstimateNanoseconds : nil)),
            JSONMember("maxErrorNanoseconds", .numberOrNull(hasEstimate ? maxErrorNanoseconds : nil)),
            JSONMember("systemClockOffsetNanoseconds", .numberOrNull(systemClockOffsetNanoseconds)),
            JSONMember("pollSeconds", .number(pollSeconds)),
            JSONMember("stampCount", .integer(parameters.stampCount)),
            JSONMember("status", .strings(statusWords)),
        ] + members
    }

    /// The JSON line of this exchange: what `ntpclient --json` prints and what the lab writes
    /// for each of its client's exchanges, byte for byte.
    public var jsonLine: String { JSONValue.object(fields).rendered() }

    /// Column names (with units) and widths of the text line, after the 30-character time.
    static let textColumns: [(name: String, width: Int)] = [
        ("rtt_us", 10), ("minrtt_us", 10), ("naive_us", 11), ("theta_us", 11), ("perr_ppm", 9),
        ("err_us", 9), ("maxerr_us", 10), ("sysoff_us", 11),
    ]

    /// The text header: column names with units, and the sign conventions.
    public static let textHeader: String = {
        var line = "# time (UTC)" + String(repeating: " ", count: 30 - 12)
        for (name, width) in textColumns { line += String(repeating: " ", count: width - name.count) + name }
        return line + "  status\n"
            + "# naive/theta: uncorrected clock − server; sysoff: CLOCK_REALTIME − feedforward clock (positive: system clock ahead)"
    }()

    /// The text header with several servers: each line ends with the source it was with;
    /// rtt and naive are that exchange's, the other columns the combined clock's.
    public static let textHeaderWithSource: String = {
        let lines = textHeader.split(separator: "\n", maxSplits: 1)
        return lines[0] + "  source\n" + lines[1] + "; rtt/naive: this source, the rest: the combined clock"
    }()

    /// One text line, columns aligned under `textHeader`.
    public var textLine: String {
        let hasEstimate = !parameters.status.contains(.noEstimate)
        let time = UTCTimeText.iso8601(unixNanoseconds: localTimeUnixNanoseconds)
        var line = time
        let values: [Double?] = [
            rttNanoseconds.map { $0 / 1000 },
            hasEstimate ? parameters.minimumRTTNanoseconds / 1000 : nil,
            naiveOffsetNanoseconds.map { $0 / 1000 },
            hasEstimate ? parameters.offsetNanoseconds / 1000 : nil,
            parameters.periodErrorPPM,
            hasEstimate ? parameters.errorEstimateNanoseconds / 1000 : nil,
            hasEstimate ? maxErrorNanoseconds / 1000 : nil,
            systemClockOffsetNanoseconds.map { $0 / 1000 },
        ]
        for (value, spec) in zip(values, ExchangeReport.textColumns) {
            line += column(value, width: spec.width, decimals: 3)
        }
        let words = statusWords
        line += "  " + (words.isEmpty ? "ok" : words.joined(separator: ","))
        if let source { line += "  " + source }
        return line
    }
}

/// Right-aligned fixed-point text of `value` in `width` columns ("-" when nil or not finite).
func column(_ value: Double?, width: Int, decimals: Int) -> String {
    let text = value.map { fixedDecimal($0, decimals) } ?? "-"
    return String(repeating: " ", count: max(1, width - text.count)) + text
}
