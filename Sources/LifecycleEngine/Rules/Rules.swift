/// The rules a lifecycle engine runs, as written by an operator (before compilation).
///
/// `LifecycleConfig` builds these from YAML and fills in source locations so that
/// `CompiledRules` can report semantic errors at the right `FILE:LINE:COL`. Tests build
/// them directly in Swift.
public struct Rules: Sendable, Equatable {
    /// Overrides the derived `config_version` stamped on every trigger.
    public var version: String?
    public var events: EventFields
    public var counters: [CounterRule]
    public var attributes: [AttributeRule]
    public var lifecycle: LifecycleRule
    public var triggers: [TriggerRule]
    /// Events that erase the user's whole state (privacy requests).
    public var eraseOn: [Located<String>]
    public var holdout: HoldoutRule
    /// Alerts on the aggregate of the users (`AlertEvaluator`); they change nothing per user.
    public var alerts: [AlertRule]

    public init(
        version: String? = nil,
        events: EventFields = EventFields(),
        counters: [CounterRule] = [],
        attributes: [AttributeRule] = [],
        lifecycle: LifecycleRule,
        triggers: [TriggerRule] = [],
        eraseOn: [Located<String>] = [],
        holdout: HoldoutRule = HoldoutRule(),
        alerts: [AlertRule] = []
    ) {
        self.version = version
        self.events = events
        self.counters = counters
        self.attributes = attributes
        self.lifecycle = lifecycle
        self.triggers = triggers
        self.eraseOn = eraseOn
        self.holdout = holdout
        self.alerts = alerts
    }
}

/// The global holdout and the salt of every holdout assignment (see `HoldoutPlan`).
public struct HoldoutRule: Sendable, Equatable {
    /// Users held out of every trigger, in basis points (0.01 %); 0 for none.
    public var global: Located<Int>
    /// Mixed into every assignment: another salt reshuffles both arms of every trigger.
    public var salt: String

    public static let defaultSalt = "lifecycled"
    /// Holdouts are 0 % to 50 % (a control arm larger than the treatment arm is an experiment, not a holdout).
    public static let maxBasisPoints = 5_000

    public init(global: Located<Int> = Located(0), salt: String = Self.defaultSalt) {
        self.global = global
        self.salt = salt
    }

    /// Basis points as a percentage: 1000 is "10%", 1250 "12.5%", 1 "0.01%".
    public static func percentText(_ basisPoints: Int) -> String {
        let whole = (basisPoints < 0 ? "-" : "") + "\(abs(basisPoints) / 100)", hundredths = abs(basisPoints) % 100
        guard hundredths != 0 else { return whole + "%" }
        let digits = hundredths < 10 ? "0\(hundredths)" : "\(hundredths)"
        return whole + "." + (digits.hasSuffix("0") ? String(digits.prefix(1)) : digits) + "%"
    }
}

/// A 1-based line and column in the config file; `.unknown` for rules built in code.
public struct SourceLocation: Sendable, Hashable, CustomStringConvertible {
    public var line: Int
    public var column: Int
    public init(line: Int, column: Int) {
        self.line = line
        self.column = column
    }
    public static let unknown = SourceLocation(line: 0, column: 0)
    public var description: String { "\(line):\(column)" }
    /// The location `offset` characters further along the same line.
    public func advanced(by offset: Int) -> SourceLocation {
        self == .unknown ? self : SourceLocation(line: line, column: column + offset)
    }
}

/// A value with the place in the config it came from.
public struct Located<Value: Sendable & Equatable>: Sendable, Equatable {
    public var value: Value
    public var location: SourceLocation
    public init(_ value: Value, at location: SourceLocation = .unknown) {
        self.value = value
        self.location = location
    }
}

/// Where the engine finds an event's fields (dot paths into the JSON object).
public struct EventFields: Sendable, Equatable {
    public var userID: String
    public var name: String
    public var time: String
    /// Events older than stream time minus this are counted as late and dropped.
    public var allowedLateness: Int64
    /// Events further than this ahead of "now" are refused (see `PartitionEngine.futureLimit`).
    public var maxFuture: Int64
    /// Larger messages are rejected as `too_large` before parsing.
    public var maxEventBytes: Int

    public init(
        userID: String = "user_id",
        name: String = "event",
        time: String = "ts",
        allowedLateness: Int64 = 10 * Millis.minute,
        maxFuture: Int64 = Millis.hour,
        maxEventBytes: Int = 64 * 1024
    ) {
        self.userID = userID
        self.name = name
        self.time = time
        self.allowedLateness = allowedLateness
        self.maxFuture = maxFuture
        self.maxEventBytes = maxEventBytes
    }
}

/// Which events something applies to.
public enum EventSelector: Sendable, Equatable {
    case any
    case names([Located<String>])
}

public struct CounterRule: Sendable, Equatable {
    public enum Aggregation: Sendable, Equatable {
        /// Number of matching events.
        case count
        /// Sum of a numeric field (dot path) over matching events; missing or non-numeric adds 0.
        case sum(path: String)
        /// Number of distinct UTC days with at least one matching event.
        case distinctDays
    }

    public var name: String
    public var events: EventSelector
    public var window: Int64
    public var aggregation: Aggregation
    /// Bucket width; `nil` picks the default (1h, or 1d for distinct days).
    public var resolution: Int64?
    public var location: SourceLocation

    public init(
        name: String, events: EventSelector, window: Int64, aggregation: Aggregation = .count,
        resolution: Int64? = nil, location: SourceLocation = .unknown
    ) {
        self.name = name
        self.events = events
        self.window = window
        self.aggregation = aggregation
        self.resolution = resolution
        self.location = location
    }
}

/// A categorical user attribute (e.g. plan) set from an event field.
public struct AttributeRule: Sendable, Equatable {
    public var name: String
    public var path: String
    public var on: EventSelector
    public var defaultValue: String
    public var location: SourceLocation

    public init(
        name: String, path: String, on: EventSelector = .any, defaultValue: String = "",
        location: SourceLocation = .unknown
    ) {
        self.name = name
        self.path = path
        self.on = on
        self.defaultValue = defaultValue
        self.location = location
    }
}

public struct LifecycleRule: Sendable, Equatable {
    public var stages: [Located<String>]
    public var initial: Located<String>
    public var transitions: [TransitionRule]

    public init(stages: [Located<String>], initial: Located<String>, transitions: [TransitionRule]) {
        self.stages = stages
        self.initial = initial
        self.transitions = transitions
    }
}

public struct TransitionRule: Sendable, Equatable {
    public enum Condition: Sendable, Equatable {
        /// A condition over the user's state (see `Expression`).
        case when(Located<String>)
        /// Any event from the user.
        case activity
    }

    public var from: [Located<String>]
    public var to: Located<String>
    public var condition: Condition
    public var location: SourceLocation

    public init(
        from: [Located<String>], to: Located<String>, condition: Condition,
        location: SourceLocation = .unknown
    ) {
        self.from = from
        self.to = to
        self.condition = condition
        self.location = location
    }
}

public struct TriggerRule: Sendable, Equatable {
    public enum Fire: Sendable, Equatable {
        /// Fires when the user enters the stage.
        case onEnter(Located<String>)
        /// Fires when the condition becomes true (edge-triggered).
        case when(Located<String>)
    }

    public var name: String
    public var fire: Fire
    /// Minimum time between two firings of this trigger for one user.
    public var cooldown: Int64
    public var goal: GoalRule?
    /// Human-readable reason; derived from the rule when absent.
    public var reason: String?
    /// Users held out of this trigger (recorded in the control arm, never reached), in basis
    /// points (0.01 %).
    public var holdout: Located<Int>?
    public var location: SourceLocation

    public init(
        name: String, fire: Fire, cooldown: Int64 = 0, goal: GoalRule? = nil, reason: String? = nil,
        holdout: Located<Int>? = nil, location: SourceLocation = .unknown
    ) {
        self.name = name
        self.fire = fire
        self.cooldown = cooldown
        self.goal = goal
        self.reason = reason
        self.holdout = holdout
        self.location = location
    }
}

/// A conversion goal: a matching event within `within` after the trigger counts once.
public struct GoalRule: Sendable, Equatable {
    public var event: EventSelector
    /// Evaluated on the user's state after the goal event is applied.
    public var condition: Located<String>?
    public var within: Int64

    public init(event: EventSelector, condition: Located<String>? = nil, within: Int64) {
        self.event = event
        self.condition = condition
        self.within = within
    }
}

/// A semantic error in rules, located in the config file when the location is known.
/// Every problem `CompiledRules` found, in the order of the rules.
public struct RuleErrors: Error, Sendable, Equatable {
    public var errors: [RuleError]
    public init(_ errors: [RuleError]) { self.errors = errors }
}

public struct RuleError: Error, Sendable, Equatable, CustomStringConvertible {
    public var message: String
    public var location: SourceLocation
    public init(_ message: String, at location: SourceLocation) {
        self.message = message
        self.location = location
    }
    public var description: String { location == .unknown ? message : "\(location): \(message)" }
}
