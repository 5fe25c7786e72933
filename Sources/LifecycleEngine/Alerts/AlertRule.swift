/// An alert as written: a measure of the instance's aggregate (`when`), the thresholds it is
/// approaching (`warn`) and crossing (`critical`), and how it is damped. `CompiledAlert`
/// checks what it means.
public struct AlertRule: Sendable, Equatable {
    public var name: String
    /// The measure, e.g. `share(at_risk)` or `conversion_rate(churn_risk, 1d)` (`AlertMeasure`).
    public var when: Located<String>
    public var warn: Located<AlertThreshold>?
    public var critical: Located<AlertThreshold>?
    /// How long a level's condition must hold before the alert fires at that level.
    public var holdFor: Int64
    /// How long a firing level stays firing after its condition stops holding (against flapping).
    public var keepFiringFor: Int64
    /// Below this many users on the instance the alert is not evaluated.
    public var minUsers: Int
    /// Below this volume (the measure's denominator, `AlertMeasure.volume`) it is not evaluated.
    public var minVolume: Located<Int>?
    public var location: SourceLocation

    public init(
        name: String, when: Located<String>, warn: Located<AlertThreshold>? = nil, critical: Located<AlertThreshold>? = nil,
        holdFor: Int64 = 0, keepFiringFor: Int64 = 0, minUsers: Int = 0, minVolume: Located<Int>? = nil,
        location: SourceLocation = .unknown
    ) {
        self.name = name
        self.when = when
        self.warn = warn
        self.critical = critical
        self.holdFor = holdFor
        self.keepFiringFor = keepFiringFor
        self.minUsers = minUsers
        self.minVolume = minVolume
        self.location = location
    }
}

/// `> 0.25`: the comparison a measure's value must pass for a level to hold.
public struct AlertThreshold: Sendable, Equatable, CustomStringConvertible {
    public var comparison: Comparison
    public var value: Double

    public init(_ comparison: Comparison, _ value: Double) {
        self.comparison = comparison
        self.value = value
    }

    public func holds(_ measured: Double) -> Bool { comparison.holds(measured, value) }

    /// Whether it is passed by larger values (`>`, `>=`) rather than smaller ones.
    var passedAbove: Bool { comparison == .greater || comparison == .greaterOrEqual }

    /// `> 0.25`, `< 1000`: whole numbers without a decimal point.
    public var description: String { "\(comparison.rawValue) \(Self.format(value))" }

    public static func format(_ value: Double) -> String {
        value.rounded(.towardZero) == value && abs(value) < 1e15 ? String(Int64(value)) : value.description
    }

    /// Parses `> 0.25`, `>=1000`, `< 0.5`; nil for anything else (== and != are not thresholds).
    public static func parse(_ text: String) -> AlertThreshold? {
        var rest = Substring(text).drop { $0 == " " }
        while rest.last == " " { rest = rest.dropLast() }
        let symbol = rest.prefix { "<>=!".contains($0) }
        guard let comparison = Comparison(rawValue: String(symbol)), comparison != .equal, comparison != .notEqual,
              let value = Double(rest.dropFirst(symbol.count).drop { $0 == " " }), value.isFinite
        else { return nil }
        return AlertThreshold(comparison, value)
    }
}
