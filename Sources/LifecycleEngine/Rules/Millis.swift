/// Time in the engine is epoch milliseconds (`Int64`); durations are milliseconds too.
public enum Millis {
    public static let second: Int64 = 1000
    public static let minute: Int64 = 60 * second
    public static let hour: Int64 = 60 * minute
    public static let day: Int64 = 24 * hour

    private static let units: [(suffix: String, size: Int64)] = [
        ("ms", 1), ("s", second), ("m", minute), ("h", hour), ("d", day), ("w", 7 * day),
    ]

    /// Parses `500ms`, `10s`, `30m`, `12h`, `7d`, `2w`, or a sum such as `1d12h`.
    /// Returns nil for anything else, including an empty string, a bare number and negatives.
    public static func parseDuration(_ text: some StringProtocol) -> Int64? {
        var total: Int64 = 0
        var rest = Substring(text)
        guard !rest.isEmpty else { return nil }
        while !rest.isEmpty {
            let digits = rest.prefix(while: { $0.isASCII && $0.isNumber })
            guard !digits.isEmpty, let amount = Int64(digits) else { return nil }
            rest = rest.dropFirst(digits.count)
            let letters = rest.prefix(while: { $0.isASCII && $0.isLetter })
            guard let unit = units.first(where: { $0.suffix == letters }) else { return nil }
            rest = rest.dropFirst(letters.count)
            let (product, overflow1) = amount.multipliedReportingOverflow(by: unit.size)
            let (sum, overflow2) = total.addingReportingOverflow(product)
            guard !overflow1, !overflow2 else { return nil }
            total = sum
        }
        return total
    }

    /// Formats a duration with the largest units that divide it, e.g. `7d`, `1d12h`, `250ms`.
    public static func formatDuration(_ duration: Int64) -> String {
        if duration == 0 { return "0s" }
        var rest = duration < 0 ? -duration : duration
        var text = duration < 0 ? "-" : ""
        for unit in units.reversed() where unit.suffix != "w" && rest >= unit.size {
            text += "\(rest / unit.size)\(unit.suffix)"
            rest %= unit.size
        }
        return text
    }
}
