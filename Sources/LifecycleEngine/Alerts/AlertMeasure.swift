/// What an alert watches: one measure of the instance's aggregate. Windowed measures are
/// differences of cumulative counts between now and a sample one window ago (`SampleHistory`).
public enum AlertMeasure: Sendable, Equatable {
    /// Users in these stages now.
    case users(stages: [Int])
    /// Users in these stages over all users (0 to 1).
    case share(stages: [Int])
    /// Firings of a trigger (both arms) within the window.
    case fired(trigger: Int, window: Int64)
    /// Conversions of a trigger's firings counted within the window.
    case converted(trigger: Int, window: Int64)
    /// `converted` over `fired` of the same window (0 to 1).
    case conversionRate(trigger: Int, window: Int64)
    /// Events consumed within the window (valid or not).
    case events(window: Int64)
    /// The largest consumer lag of the instance's partitions, in messages.
    case lag

    /// The forms `when:` takes, for error messages.
    static let forms = "users(STAGE, ...), share(STAGE, ...), fired(TRIGGER, WINDOW), converted(TRIGGER, WINDOW), conversion_rate(TRIGGER, WINDOW), events(WINDOW) or lag"

    var window: Int64? {
        switch self {
        case .users, .share, .lag: nil
        case .fired(_, let window), .converted(_, let window), .conversionRate(_, let window), .events(let window): window
        }
    }

    /// Whether the value is a fraction from 0 to 1.
    var isFraction: Bool {
        switch self {
        case .share, .conversionRate: true
        case .users, .fired, .converted, .events, .lag: false
        }
    }

    /// What a `min_volume` counts.
    public enum VolumeUnit: String, Sendable {
        case firings, events
    }

    /// The count a `min_volume` is compared with, and what it counts: a trigger's firings in
    /// the window for the trigger measures (a rate's denominator), events in the window for
    /// `events`. nil for the measures without a window, whose only volume is the users
    /// (`min_users`).
    func volume(_ now: borrowing AlertSample, since base: borrowing AlertSample) -> (count: Int, unit: VolumeUnit)? {
        switch self {
        case .fired(let trigger, _), .converted(let trigger, _), .conversionRate(let trigger, _):
            (now.fired[trigger] - base.fired[trigger], .firings)
        case .events: (now.events - base.events, .events)
        case .users, .share, .lag: nil
        }
    }

    /// The value at `now`; `base` is the sample one window ago (ignored by the measures
    /// without a window). A reason instead when there is no value.
    func value(_ now: borrowing AlertSample, since base: borrowing AlertSample) -> Result<Double, AlertSkipped> {
        switch self {
        case .users(let stages):
            return .success(Double(stages.reduce(0) { $0 + now.usersPerStage[$1] }))
        case .share(let stages):
            let total = now.users
            guard total > 0 else { return .failure(.noUsers) }
            return .success(Double(stages.reduce(0) { $0 + now.usersPerStage[$1] }) / Double(total))
        case .fired(let trigger, _):
            return .success(Double(now.fired[trigger] - base.fired[trigger]))
        case .converted(let trigger, _):
            return .success(Double(now.converted[trigger] - base.converted[trigger]))
        case .conversionRate(let trigger, let window):
            let fired = now.fired[trigger] - base.fired[trigger]
            guard fired > 0 else { return .failure(.noFirings(window: window)) }
            return .success(Double(now.converted[trigger] - base.converted[trigger]) / Double(fired))
        case .events:
            return .success(Double(now.events - base.events))
        case .lag:
            guard let lag = now.lag else { return .failure(.lagUnknown) }
            return .success(Double(lag))
        }
    }
}

/// Why an alert was not evaluated at a sample. Kept as numbers, not text: most samples of a
/// skipped alert change nothing, and `reason` is only formatted for a change or a status.
public enum AlertSkipped: Error, Sendable, Equatable {
    case belowMinUsers(users: Int, minUsers: Int)
    /// `covered`: the history there is, in milliseconds rounded down to whole seconds.
    case notEnoughHistory(window: Int64, covered: Int64)
    case belowMinVolume(count: Int, minVolume: Int, unit: AlertMeasure.VolumeUnit, window: Int64)
    case noUsers
    case noFirings(window: Int64)
    case lagUnknown

    /// The alert's `reason`, as `/v1/alerts` and the alerts topic show it.
    public var reason: String {
        switch self {
        case .belowMinUsers(let users, let minUsers): "below min_users (\(users) < \(minUsers))"
        case .notEnoughHistory(let window, let covered):
            "not enough history for \(Millis.formatDuration(window)) yet (\(Millis.formatDuration(covered)))"
        case .belowMinVolume(let count, let minVolume, let unit, let window):
            "below min_volume (\(count) < \(minVolume) \(unit.rawValue) in \(Millis.formatDuration(window)))"
        case .noUsers: "no users"
        case .noFirings(let window): "no firings in \(Millis.formatDuration(window))"
        case .lagUnknown: "consumer lag unknown"
        }
    }
}

/// The instance's aggregate at one moment: what alerts are evaluated on. The counts other
/// than users only grow, so a window's count is the difference of two samples.
public struct AlertSample: Sendable, Equatable {
    /// Users in each stage now, indexed like the rules' stage names.
    public var usersPerStage: [Int]
    /// Firings (both arms) and conversions so far, indexed like the rules' trigger names.
    public var fired: [Int]
    public var converted: [Int]
    /// Events consumed so far.
    public var events: Int
    /// The largest consumer lag of the assigned partitions; nil when unknown (or in replay).
    public var lag: Int64?

    public init(usersPerStage: [Int], fired: [Int], converted: [Int], events: Int, lag: Int64? = nil) {
        self.usersPerStage = usersPerStage
        self.fired = fired
        self.converted = converted
        self.events = events
        self.lag = lag
    }

    public var users: Int { usersPerStage.reduce(0, +) }
}

/// `when:` as written: a measure's name and arguments (names and durations), each with its
/// character offset for error locations. `lag` takes no parentheses.
struct MeasureCall: Equatable {
    struct Word: Equatable {
        var text: String
        var offset: Int
    }

    var name: Word
    var arguments: [Word]

    static func parse(_ text: String) throws(ExpressionError) -> MeasureCall {
        let chars = Array(text)
        var index = 0
        func skipSpaces() { while index < chars.count, chars[index] == " " { index += 1 } }
        func word() throws(ExpressionError) -> Word {
            skipSpaces()
            let start = index
            while index < chars.count, chars[index].isLetter || chars[index].isNumber || chars[index] == "_" { index += 1 }
            guard index > start else {
                throw ExpressionError(
                    message: index < chars.count ? "unexpected '\(chars[index])'" : "the measure ends too early", offset: index)
            }
            return Word(text: String(chars[start..<index]), offset: start)
        }
        let name = try word()
        var arguments: [Word] = []
        skipSpaces()
        if index < chars.count, chars[index] == "(" {
            index += 1
            skipSpaces()
            if index < chars.count, chars[index] == ")" {
                index += 1
            } else {
                while true {
                    arguments.append(try word())
                    skipSpaces()
                    guard index < chars.count, chars[index] == "," || chars[index] == ")" else {
                        throw ExpressionError(message: "expected ',' or ')' in the arguments of '\(name.text)'", offset: index)
                    }
                    index += 1
                    if chars[index - 1] == ")" { break }
                }
            }
            skipSpaces()
        }
        guard index == chars.count else {
            throw ExpressionError(
                message: "unexpected '\(chars[index])' after the measure: an alert watches one measure, such as \(Self.example)",
                offset: index)
        }
        return MeasureCall(name: name, arguments: arguments)
    }

    static let example = "share(at_risk) or conversion_rate(churn_risk, 1d)"
}
