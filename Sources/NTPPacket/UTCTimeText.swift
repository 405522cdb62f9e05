/// The one place that turns a time into text (one way to do each thing, so every tool's
/// times read alike).
/// Integer civil-from-days arithmetic (H. Hinnant's algorithm), proleptic Gregorian calendar,
/// no leap seconds, no Foundation. Not for hot paths: it builds Strings.
public enum UTCTimeText {
    /// "2026-11-21T18:43:25.271634559Z" (ISO 8601 / RFC 3339, nanoseconds always shown).
    public static func iso8601(unixNanoseconds: Int64) -> String {
        let t = CivilTime(unixNanoseconds: unixNanoseconds)
        return "\(pad(t.year, 4))-\(pad(t.month, 2))-\(pad(t.day, 2))T"
            + "\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)).\(pad(t.nanosecond, 9))Z"
    }

    /// "Nov 21, 2026 18:43:25.271634559 UTC", as Wireshark prints absolute times
    /// (day padded with a space to two characters).
    public static func wiresharkStyle(unixNanoseconds: Int64) -> String {
        let t = CivilTime(unixNanoseconds: unixNanoseconds)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let day = t.day < 10 ? " \(t.day)" : "\(t.day)"
        return "\(months[Int(t.month) - 1]) \(day), \(pad(t.year, 4)) "
            + "\(pad(t.hour, 2)):\(pad(t.minute, 2)):\(pad(t.second, 2)).\(pad(t.nanosecond, 9)) UTC"
    }

    private static func pad(_ value: Int64, _ width: Int) -> String {
        let digits = String(value.magnitude)
        let sign = value < 0 ? "-" : ""
        return sign + String(repeating: "0", count: Swift.max(0, width - digits.count)) + digits
    }
}

/// A Unix time broken into calendar fields (UTC).
struct CivilTime: Equatable {
    var year: Int64, month: Int64, day: Int64
    var hour: Int64, minute: Int64, second: Int64, nanosecond: Int64

    init(unixNanoseconds: Int64) {
        let (seconds, nanosecond) = floorDivide(unixNanoseconds, 1_000_000_000)
        let (days, secondOfDay) = floorDivide(seconds, 86_400)
        self.nanosecond = nanosecond
        hour = secondOfDay / 3600
        minute = secondOfDay % 3600 / 60
        second = secondOfDay % 60
        // civil_from_days: eras of 400 years (146097 days) starting 0000-03-01.
        let z = days + 719_468
        let era = floorDivide(z, 146_097).quotient
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let monthIndex = (5 * dayOfYear + 2) / 153  // 0 = March
        day = dayOfYear - (153 * monthIndex + 2) / 5 + 1
        month = monthIndex < 10 ? monthIndex + 3 : monthIndex - 9
        year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
    }
}
