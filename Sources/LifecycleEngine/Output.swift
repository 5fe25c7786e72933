/// A trigger fired by the engine, as owned values: the moment to reach a user, with its
/// evidence. The engine records `FiredTrigger`s; this is for tools and tests that keep them.
public struct Trigger: Sendable, Equatable {
    /// Deterministic: derived from trigger, user, `firedAt` and config version.
    public var id: String
    public var name: String
    public var userID: String
    /// Stream (event) time; for a timer, its deadline.
    public var firedAt: Int64
    /// The stage change that fired an `on_enter` trigger; nil for condition triggers.
    public var transition: StageChange?
    public var reason: String
    /// The values the rule looked at, in a stable order.
    public var evidence: [Evidence]
    public var configVersion: String
    /// For a trigger with a holdout: whether the user is reached (treatment) or held out
    /// (control: recorded, never acted on). nil for a trigger without one.
    public var arm: Arm?

    public init(
        id: String, name: String, userID: String, firedAt: Int64, transition: StageChange?,
        reason: String, evidence: [Evidence], configVersion: String, arm: Arm? = nil
    ) {
        self.id = id
        self.name = name
        self.userID = userID
        self.firedAt = firedAt
        self.transition = transition
        self.reason = reason
        self.evidence = evidence
        self.configVersion = configVersion
        self.arm = arm
    }
}

extension Trigger {
    /// `trigger` as owned values (allocates; never on the hot path).
    public init(_ trigger: FiredTrigger, in output: EngineOutput, rules: CompiledRules) {
        self.init(
            id: trigger.id.description, name: rules.triggerNames[trigger.trigger],
            userID: String(decoding: output.userID(of: trigger), as: UTF8.self), firedAt: trigger.firedAt,
            transition: rules.stageChange(of: trigger), reason: rules.reason(of: trigger),
            evidence: zip(rules.evidenceNames(of: trigger), output.evidence(of: trigger)).map { name, value in
                switch value {
                case .integer(let value): Evidence(name, .integer(value))
                case .number(let value): Evidence(name, .number(value))
                case .text(let range): Evidence(name, .text(String(decoding: output.text(range), as: UTF8.self)))
                }
            },
            configVersion: rules.configVersion, arm: trigger.arm)
    }
}

extension EngineOutput {
    /// Every trigger held, as owned values (see `Trigger(_:in:rules:)`).
    public func makeTriggers(rules: CompiledRules) -> [Trigger] { triggers.map { Trigger($0, in: self, rules: rules) } }
}

public struct StageChange: Sendable, Equatable {
    public var from: String
    public var to: String
    public init(from: String, to: String) {
        self.from = from
        self.to = to
    }
}

public struct Evidence: Sendable, Equatable {
    public enum Value: Sendable, Equatable {
        case number(Double)
        case integer(Int64)
        case text(String)
    }

    public var name: String
    public var value: Value
    public init(_ name: String, _ value: Value) {
        self.name = name
        self.value = value
    }
}

/// A goal event that arrived within a trigger's goal window: the reach worked.
public struct Conversion: Sendable, Equatable {
    public var trigger: String
    public var triggerID: String
    public var userID: String
    public var firedAt: Int64
    public var convertedAt: Int64
    /// The converted trigger's arm, as for `Trigger.arm`.
    public var arm: Arm?

    public init(trigger: String, triggerID: String, userID: String, firedAt: Int64, convertedAt: Int64, arm: Arm? = nil) {
        self.trigger = trigger
        self.triggerID = triggerID
        self.userID = userID
        self.firedAt = firedAt
        self.convertedAt = convertedAt
        self.arm = arm
    }
}
