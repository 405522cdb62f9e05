import FeedforwardClock
import ToolSupport

/// One source's state as `ntpclient --sources` shows it, the way `chronyc sources` does
/// (docs/feedforward.md, "Several sources"): reach, the source's own estimate against the
/// published clock, its error and hard bound, and what the vote made of it.
public struct SourceReport: Sendable, Equatable {
    /// HOST[:PORT] as given, and the address it resolved to.
    public var name: String
    public var stratum: UInt8
    /// The last 8 exchanges, newest in bit 0: 1 when the filter used the stamp (RFC 5905 §13's
    /// reach register; chronyc prints it in octal too).
    public var reach: UInt8
    public var pollSeconds: Double
    /// This source's clock Ca_i minus the published clock, at the report (nil without estimate).
    public var offsetFromClockNanoseconds: Double?
    /// θ_j of the source's last stamp (its uncorrected clock minus the server).
    public var lastNaiveOffsetNanoseconds: Double?
    public var errorEstimateNanoseconds: Double?
    /// The source's own hard bound aged to the report (§8.2).
    public var maxErrorNanoseconds: Double?
    public var condition: SourceCondition
    public var verdict: SourceVerdict
    /// The published clock's period p̂ comes from this source.
    public var isPeriodSource: Bool

    public init(name: String, stratum: UInt8, reach: UInt8, pollSeconds: Double, offsetFromClockNanoseconds: Double?,
                lastNaiveOffsetNanoseconds: Double?, errorEstimateNanoseconds: Double?, maxErrorNanoseconds: Double?,
                condition: SourceCondition, verdict: SourceVerdict, isPeriodSource: Bool) {
        self.name = name
        self.stratum = stratum
        self.reach = reach
        self.pollSeconds = pollSeconds
        self.offsetFromClockNanoseconds = offsetFromClockNanoseconds
        self.lastNaiveOffsetNanoseconds = lastNaiveOffsetNanoseconds
        self.errorEstimateNanoseconds = errorEstimateNanoseconds
        self.maxErrorNanoseconds = maxErrorNanoseconds
        self.condition = condition
        self.verdict = verdict
        self.isPeriodSource = isPeriodSource
    }

    /// The state word: the verdict, and for an unusable source why.
    public var stateWord: String {
        verdict == .unusable ? "unusable(\(condition))" : verdict.description
    }

    /// chronyc's mark: `*` selected and the period source, `+` selected, `x` falseticker,
    /// `?` unusable, `-` usable but without majority.
    public var mark: Character {
        switch verdict {
        case .selected: return isPeriodSource ? "*" : "+"
        case .falseticker: return "x"
        case .unusable: return "?"
        case .candidate: return "-"
        }
    }

    public var fields: [JSONMember] {
        [
            JSONMember("source", .string(name)),
            JSONMember("state", .string(verdict.description)),
            JSONMember("condition", .string(condition.description)),
            JSONMember("periodSource", .bool(isPeriodSource)),
            JSONMember("stratum", .integer(Int64(stratum))),
            JSONMember("reach", .integer(Int64(reach))),
            JSONMember("pollSeconds", .number(pollSeconds)),
            JSONMember("offsetFromClockNanoseconds", .numberOrNull(offsetFromClockNanoseconds)),
            JSONMember("lastNaiveOffsetNanoseconds", .numberOrNull(lastNaiveOffsetNanoseconds)),
            JSONMember("errorEstimateNanoseconds", .numberOrNull(errorEstimateNanoseconds)),
            JSONMember("maxErrorNanoseconds", .numberOrNull(maxErrorNanoseconds)),
        ]
    }

    static let tableColumns: [(name: String, width: Int)] = [
        ("st", 3), ("poll", 6), ("reach", 6), ("offset_us", 12), ("naive_us", 12), ("err_us", 10), ("maxerr_us", 11),
    ]

    /// The `--sources` table header.
    public static let tableHeader: String = {
        var line = "M " + leftAligned("source", 27) + " "
        for (name, width) in tableColumns { line += rightAligned(name, width) }
        return line + "  state\n"
            + "# M: * selected (period source), + selected, x falseticker, ? unusable, - no majority;"
            + " offset: source's clock − published clock; reach: last 8 exchanges, octal"
    }()

    public var tableLine: String {
        var line = String(mark) + " " + leftAligned(name, 27) + " "
        line += column(Double(stratum), width: 3, decimals: 0)
        line += column(pollSeconds, width: 6, decimals: 0)
        line += rightAligned(String(reach, radix: 8), 6)
        line += column(offsetFromClockNanoseconds.map { $0 / 1000 }, width: 12, decimals: 3)
        line += column(lastNaiveOffsetNanoseconds.map { $0 / 1000 }, width: 12, decimals: 3)
        line += column(errorEstimateNanoseconds.map { $0 / 1000 }, width: 10, decimals: 3)
        line += column(maxErrorNanoseconds.map { $0 / 1000 }, width: 11, decimals: 3)
        return line + "  " + stateWord
    }
}
