/// An alert checked against the rules: its measure resolved to stage and trigger indices,
/// its thresholds ordered (warn is reached before critical).
public struct CompiledAlert: Sendable, Equatable {
    public let name: String
    /// `when:` as written.
    public let when: String
    let measure: AlertMeasure
    public let warn: AlertThreshold?
    public let critical: AlertThreshold?
    let holdFor: Int64
    let keepFiringFor: Int64
    let minUsers: Int
    let minVolume: Int?

    /// Windows shorter than this would be mostly sampling error (the daemon samples each second).
    public static let minWindow = Millis.minute

    /// - Parameters:
    ///   - stages: the rules' stage names, in order.
    ///   - triggers: the rules' trigger names, in order, and whether each has a goal.
    init(_ rule: AlertRule, stages: [String], triggers: [(name: String, hasGoal: Bool)]) throws(RuleError) {
        let field = "alerts.\(rule.name)"
        let at = rule.when.location
        let call: MeasureCall
        do {
            call = try MeasureCall.parse(rule.when.value)
        } catch {
            throw RuleError("\(field).when: \(error.message)", at: at.advanced(by: error.offset))
        }
        func arguments(_ expected: Int, _ form: String) throws(RuleError) {
            guard call.arguments.count == expected else {
                throw RuleError(
                    "\(field).when: '\(call.name.text)' takes \(expected == 0 ? "no arguments" : "\(expected) argument\(expected == 1 ? "" : "s")"): \(form)",
                    at: at.advanced(by: call.name.offset))
            }
        }
        func stage(_ word: MeasureCall.Word) throws(RuleError) -> Int {
            guard let index = stages.firstIndex(of: word.text) else {
                throw RuleError(
                    "\(field).when: '\(word.text)' is not a declared stage: expected one of \(stages.joined(separator: ", "))",
                    at: at.advanced(by: word.offset))
            }
            return index
        }
        func trigger(_ word: MeasureCall.Word, needsGoal: Bool) throws(RuleError) -> Int {
            guard let index = triggers.firstIndex(where: { $0.name == word.text }) else {
                throw RuleError(
                    "\(field).when: '\(word.text)' is not a trigger: expected one of \(triggers.map(\.name).joined(separator: ", "))",
                    at: at.advanced(by: word.offset))
            }
            guard !needsGoal || triggers[index].hasGoal else {
                throw RuleError(
                    "\(field).when: trigger '\(word.text)' has no goal, so nothing converts: give it a goal, or watch fired(\(word.text), WINDOW)",
                    at: at.advanced(by: word.offset))
            }
            return index
        }
        func window(_ word: MeasureCall.Word) throws(RuleError) -> Int64 {
            guard let window = Millis.parseDuration(word.text), window >= Self.minWindow else {
                throw RuleError(
                    "\(field).when: '\(word.text)' is not a window of at least \(Millis.formatDuration(Self.minWindow)); expected a duration such as 10m, 1h or 1d",
                    at: at.advanced(by: word.offset))
            }
            return window
        }
        func stageList(_ form: String) throws(RuleError) -> [Int] {
            guard !call.arguments.isEmpty else {
                throw RuleError("\(field).when: '\(call.name.text)' needs at least one stage: \(form)", at: at.advanced(by: call.name.offset))
            }
            var list: [Int] = []
            for word in call.arguments { list.append(try stage(word)) }
            return list
        }

        switch call.name.text {
        case "users": measure = .users(stages: try stageList("users(STAGE, ...)"))
        case "share": measure = .share(stages: try stageList("share(STAGE, ...)"))
        case "fired", "converted", "conversion_rate":
            try arguments(2, "\(call.name.text)(TRIGGER, WINDOW), e.g. \(call.name.text)(churn_risk, 1h)")
            let index = try trigger(call.arguments[0], needsGoal: call.name.text != "fired")
            let span = try window(call.arguments[1])
            measure = call.name.text == "fired" ? .fired(trigger: index, window: span)
                : call.name.text == "converted" ? .converted(trigger: index, window: span)
                : .conversionRate(trigger: index, window: span)
        case "events":
            try arguments(1, "events(WINDOW), e.g. events(10m)")
            measure = .events(window: try window(call.arguments[0]))
        case "lag":
            try arguments(0, "lag")
            measure = .lag
        default:
            throw RuleError(
                "\(field).when: unknown measure '\(call.name.text)': expected \(AlertMeasure.forms)", at: at.advanced(by: call.name.offset))
        }

        try Self.checkThresholds(rule, measure: measure, field: field)
        // The windowed measures are the ones with a volume of their own (`AlertMeasure.volume`).
        if let volume = rule.minVolume, measure.window == nil {
            throw RuleError(
                "\(field).min_volume: '\(call.name.text)' has no volume but its users; use min_users", at: volume.location)
        }
        name = rule.name
        when = rule.when.value
        warn = rule.warn?.value
        critical = rule.critical?.value
        holdFor = rule.holdFor
        keepFiringFor = rule.keepFiringFor
        minUsers = rule.minUsers
        minVolume = rule.minVolume?.value
    }

    /// At least one level; each within the measure's range; both in one direction, warn first.
    private static func checkThresholds(_ rule: AlertRule, measure: AlertMeasure, field: String) throws(RuleError) {
        guard rule.warn != nil || rule.critical != nil else {
            throw RuleError("\(field): needs 'warn', 'critical' or both (e.g. critical: \"> 0.25\")", at: rule.location)
        }
        for (level, threshold) in [("warn", rule.warn), ("critical", rule.critical)] {
            guard let threshold else { continue }
            let value = threshold.value.value
            if measure.isFraction, !(0...1).contains(value) {
                throw RuleError(
                    "\(field).\(level): \(value) is outside 0 to 1; '\(rule.when.value)' is a fraction (0.15 for 15%)", at: threshold.location)
            }
            if !measure.isFraction, value < 0 {
                throw RuleError("\(field).\(level): '\(rule.when.value)' is a count; expected a threshold of 0 or more", at: threshold.location)
            }
        }
        guard let warn = rule.warn, let critical = rule.critical else { return }
        guard warn.value.passedAbove == critical.value.passedAbove else {
            throw RuleError(
                "\(field).critical: '\(critical.value)' and warn '\(warn.value)' point in opposite directions; use > or >= for both, or < or <= for both",
                at: critical.location)
        }
        let rising = warn.value.passedAbove
        guard rising ? warn.value.value < critical.value.value : warn.value.value > critical.value.value else {
            throw RuleError(
                "\(field).warn: '\(warn.value)' must be reached before critical '\(critical.value)', so \(rising ? "below" : "above") \(AlertThreshold.format(critical.value.value))",
                at: warn.location)
        }
    }
}
