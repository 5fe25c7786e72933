import LifecycleEngine
import Yams

/// Reads the rule sections (events, counters, attributes, lifecycle, triggers, erase_on, holdout, alerts).
/// Shapes, types, durations and names are checked here; what the rules mean (conditions,
/// stages) is checked by `CompiledRules`. A problem is recorded and reading goes on with the
/// next field or item, which is left out of the rules returned.
struct RulesReader {
    let yaml: YAMLCursor
    private(set) var triggerTopics: [String: String] = [:]
    /// Counter and attribute names with where they were defined, to report duplicates.
    private var names: [String: String] = [:]

    init(yaml: YAMLCursor) { self.yaml = yaml }

    mutating func rules(_ top: Node.Mapping, root: Node) -> Rules {
        Rules(
            version: top["version"].flatMap { node in yaml.recover { () throws(ConfigError) in try version(node) } },
            events: top["events"].flatMap { node in yaml.recover { () throws(ConfigError) in try events(node) } } ?? EventFields(),
            counters: counters(top["counters"]),
            attributes: attributes(top["attributes"]),
            lifecycle: yaml.recover { () throws(ConfigError) in
                try lifecycle(try yaml.required(top, "lifecycle", "the config", parent: root))
            } ?? LifecycleRule(stages: [], initial: Located(""), transitions: []),
            triggers: triggers(top["triggers"]),
            eraseOn: top["erase_on"].flatMap { node in yaml.recover { () throws(ConfigError) in try yaml.names(node, "erase_on") } } ?? [],
            holdout: top["holdout"].flatMap { node in yaml.recover { () throws(ConfigError) in try holdout(node) } } ?? HoldoutRule(),
            alerts: alerts(top["alerts"]))
    }

    /// `holdout: {global: 5%, salt: "2026-q4"}`, both optional.
    private func holdout(_ node: Node) throws(ConfigError) -> HoldoutRule {
        let map = try yaml.mapping(node, "holdout")
        yaml.checkKeys(map, allowed: ["global", "salt"], "holdout")
        var rule = HoldoutRule()
        yaml.read(map, "global", of: "holdout", into: &rule.global, yaml.percentage)
        yaml.read(map, "salt", of: "holdout", into: &rule.salt, yaml.nonEmptyString)
        return rule
    }

    /// Every trigger carries the version, so it must stay small.
    static let maxVersionBytes = 128

    private func version(_ node: Node) throws(ConfigError) -> String {
        let version = try yaml.nonEmptyString(node, "version")
        guard version.utf8.count <= Self.maxVersionBytes else {
            throw yaml.error(
                "version: \(version.utf8.count) bytes is too long; at most \(Self.maxVersionBytes) (it is stamped on every trigger)",
                at: node)
        }
        return version
    }

    private func events(_ node: Node) throws(ConfigError) -> EventFields {
        let map = try yaml.mapping(node, "events")
        yaml.checkKeys(map, allowed: ["user_id", "name", "time", "allowed_lateness", "max_future", "max_event_bytes"], "events")
        var fields = EventFields()
        yaml.read(map, "user_id", of: "events", into: &fields.userID, yaml.nonEmptyString)
        yaml.read(map, "name", of: "events", into: &fields.name, yaml.nonEmptyString)
        yaml.read(map, "time", of: "events", into: &fields.time, yaml.nonEmptyString)
        yaml.read(map, "allowed_lateness", of: "events", into: &fields.allowedLateness, yaml.duration)
        yaml.read(map, "max_future", of: "events", into: &fields.maxFuture) { (node, path) throws(ConfigError) in
            let duration = try yaml.duration(node, path)
            guard duration > 0 else { throw yaml.error("\(path): must be longer than 0", at: node) }
            return duration
        }
        yaml.read(map, "max_event_bytes", of: "events", into: &fields.maxEventBytes, yaml.positiveInteger)
        return fields
    }

    /// Records a counter or attribute name, rejecting one already used by either.
    private mutating func claim(_ name: String, _ path: String, at node: Node) throws(ConfigError) {
        if let previous = names[name] {
            throw yaml.error("\(path): the name '\(name)' is already used by \(previous); names must be unique", at: node)
        }
        if CompiledRules.reservedNames.contains(name) {
            throw yaml.error("\(path): '\(name)' is a built-in name; choose another", at: node)
        }
        names[name] = path
    }

    /// Each entry of a mapping section (`counters`, `attributes`, `triggers`), read on its
    /// own: one that fails is recorded and left out.
    private mutating func entries<T>(
        _ node: Node?, _ section: String, _ entry: (inout Self, Node, Node) throws(ConfigError) -> T
    ) -> [T] {
        guard let node, let map = yaml.recover({ () throws(ConfigError) in try yaml.mapping(node, section) }) else { return [] }
        var rules: [T] = []
        for (key, value) in map {
            do {
                rules.append(try entry(&self, key, value))
            } catch {
                yaml.problems.errors.append(error)
            }
        }
        return rules
    }

    private mutating func counters(_ node: Node?) -> [CounterRule] {
        entries(node, "counters") { (reader, key, value) throws(ConfigError) in try reader.counter(key, value) }
    }

    /// A counter or attribute: its name (claimed), its path and its mapping, keys checked.
    private mutating func declaration(
        _ key: Node, _ value: Node, in section: String, allowed: [String]
    ) throws(ConfigError) -> (name: String, path: String, map: Node.Mapping) {
        let name = try yaml.identifier(key, section)
        let path = "\(section).\(name)"
        try claim(name, path, at: key)
        let map = try yaml.mapping(value, path)
        yaml.checkKeys(map, allowed: allowed, path)
        return (name, path, map)
    }

    private mutating func counter(_ key: Node, _ value: Node) throws(ConfigError) -> CounterRule {
        let (name, path, map) = try declaration(key, value, in: "counters", allowed: ["events", "window", "sum", "distinct", "resolution"])
        let aggregation: CounterRule.Aggregation
        switch (map["sum"], map["distinct"]) {
        case (let sum?, nil): aggregation = .sum(path: try yaml.nonEmptyString(sum, "\(path).sum"))
        case (nil, let distinct?):
            guard try yaml.string(distinct, "\(path).distinct") == "day" else {
                throw yaml.error("\(path).distinct: only 'day' is supported", at: distinct)
            }
            aggregation = .distinctDays
        case (nil, nil): aggregation = .count
        case (_?, let distinct?):
            throw yaml.error("\(path): use either 'sum' or 'distinct', not both", at: distinct)
        }
        let window = try yaml.duration(try yaml.required(map, "window", path, parent: value), "\(path).window")
        guard window > 0 else { throw yaml.error("\(path).window: must be longer than 0", at: map["window"]) }
        let resolution = try map["resolution"].map { (node) throws(ConfigError) -> Int64 in
            let resolution = try yaml.duration(node, "\(path).resolution")
            guard resolution >= Millis.minute, resolution <= window else {
                throw yaml.error("\(path).resolution: must be between 1m and the window (\(Millis.formatDuration(window)))", at: node)
            }
            return resolution
        }
        return CounterRule(
            name: name, events: try yaml.selector(try yaml.required(map, "events", path, parent: value), "\(path).events"),
            window: window, aggregation: aggregation, resolution: resolution, location: yaml.location(key))
    }

    private mutating func attributes(_ node: Node?) -> [AttributeRule] {
        entries(node, "attributes") { (reader, key, value) throws(ConfigError) in try reader.attribute(key, value) }
    }

    private mutating func attribute(_ key: Node, _ value: Node) throws(ConfigError) -> AttributeRule {
        let (name, path, map) = try declaration(key, value, in: "attributes", allowed: ["from", "on", "default"])
        return AttributeRule(
            name: name,
            path: try yaml.nonEmptyString(try yaml.required(map, "from", path, parent: value), "\(path).from"),
            on: try map["on"].map { (node) throws(ConfigError) in try yaml.selector(node, "\(path).on") } ?? .any,
            defaultValue: try map["default"].map { (node) throws(ConfigError) in try yaml.string(node, "\(path).default") } ?? "",
            location: yaml.location(key))
    }

    private func lifecycle(_ node: Node) throws(ConfigError) -> LifecycleRule {
        let map = try yaml.mapping(node, "lifecycle")
        yaml.checkKeys(map, allowed: ["stages", "initial", "transitions"], "lifecycle")
        let stages = yaml.recover { () throws(ConfigError) in try self.stages(map, node) } ?? []
        let initial = yaml.recover { () throws(ConfigError) in
            try yaml.located(try yaml.required(map, "initial", "lifecycle", parent: node), "lifecycle.initial")
        } ?? Located("")
        var transitions: [TransitionRule] = []
        if let list = map["transitions"] {
            guard case .sequence(let sequence) = list else {
                throw yaml.error("lifecycle.transitions: expected a list of transitions, found \(yaml.kind(list))", at: list)
            }
            for (index, item) in sequence.enumerated() {
                if let rule = yaml.recover({ () throws(ConfigError) in try transition(item, "lifecycle.transitions[\(index)]") }) {
                    transitions.append(rule)
                }
            }
        }
        return LifecycleRule(stages: stages, initial: initial, transitions: transitions)
    }

    private func stages(_ map: Node.Mapping, _ node: Node) throws(ConfigError) -> [Located<String>] {
        let stagesNode = try yaml.required(map, "stages", "lifecycle", parent: node)
        guard case .sequence = stagesNode else {
            throw yaml.error("lifecycle.stages: expected a list of stage names, found \(yaml.kind(stagesNode))", at: stagesNode)
        }
        let stages = try yaml.names(stagesNode, "lifecycle.stages")
        var seen: Set<String> = []
        for stage in stages where !seen.insert(stage.value).inserted {
            throw ConfigError(file: yaml.file, line: stage.location.line, column: stage.location.column,
                              message: "lifecycle.stages: '\(stage.value)' is listed twice")
        }
        return stages
    }

    private func transition(_ node: Node, _ path: String) throws(ConfigError) -> TransitionRule {
        let map = try yaml.mapping(node, path)
        yaml.checkKeys(map, allowed: ["from", "to", "when", "on"], path)
        let condition: TransitionRule.Condition
        switch (map["when"], map["on"]) {
        case (let when?, nil): condition = .when(try expression(when, "\(path).when"))
        case (nil, let on?):
            guard try yaml.string(on, "\(path).on") == "activity" else {
                throw yaml.error("\(path).on: expected 'activity' (any event from the user)", at: on)
            }
            condition = .activity
        case (nil, nil):
            throw yaml.error("\(path): needs either 'when: CONDITION' or 'on: activity'", at: node)
        case (_?, let on?):
            throw yaml.error("\(path): use either 'when' or 'on', not both", at: on)
        }
        return TransitionRule(
            from: try yaml.names(try yaml.required(map, "from", path, parent: node), "\(path).from"),
            to: try yaml.located(try yaml.required(map, "to", path, parent: node), "\(path).to"),
            condition: condition, location: yaml.location(node))
    }

    private func expression(_ node: Node, _ path: String) throws(ConfigError) -> Located<String> {
        Located(try yaml.nonEmptyString(node, path), at: yaml.textLocation(node))
    }

    private mutating func triggers(_ node: Node?) -> [TriggerRule] {
        entries(node, "triggers") { (reader, key, value) throws(ConfigError) in try reader.trigger(key, value) }
    }

    private mutating func trigger(_ key: Node, _ value: Node) throws(ConfigError) -> TriggerRule {
        let name = try yaml.identifier(key, "triggers")
        let path = "triggers.\(name)"
        let map = try yaml.mapping(value, path)
        yaml.checkKeys(map, allowed: ["on_enter", "when", "cooldown", "goal", "reason", "topic", "holdout"], path)
        let fire: TriggerRule.Fire
        switch (map["on_enter"], map["when"]) {
        case (let stage?, nil): fire = .onEnter(try yaml.located(stage, "\(path).on_enter"))
        case (nil, let when?): fire = .when(try expression(when, "\(path).when"))
        case (nil, nil): throw yaml.error("\(path): needs either 'on_enter: STAGE' or 'when: CONDITION'", at: value)
        case (_?, let when?): throw yaml.error("\(path): use either 'on_enter' or 'when', not both", at: when)
        }
        triggerTopics[name] = try map["topic"].map { (node) throws(ConfigError) in try yaml.nonEmptyString(node, "\(path).topic") }
            ?? "lifecycled.\(name)"
        return TriggerRule(
            name: name, fire: fire,
            cooldown: try map["cooldown"].map { (node) throws(ConfigError) in try yaml.duration(node, "\(path).cooldown") } ?? 0,
            goal: try map["goal"].map { (node) throws(ConfigError) in try goal(node, "\(path).goal") },
            reason: try map["reason"].map { (node) throws(ConfigError) in try yaml.nonEmptyString(node, "\(path).reason") },
            holdout: try map["holdout"].map { (node) throws(ConfigError) in try yaml.percentage(node, "\(path).holdout") },
            location: yaml.location(key))
    }

    private func goal(_ node: Node, _ path: String) throws(ConfigError) -> GoalRule {
        let map = try yaml.mapping(node, path)
        yaml.checkKeys(map, allowed: ["event", "where", "within"], path)
        let within = try yaml.duration(try yaml.required(map, "within", path, parent: node), "\(path).within")
        guard within > 0 else { throw yaml.error("\(path).within: must be longer than 0", at: map["within"]) }
        return GoalRule(
            event: try yaml.selector(try yaml.required(map, "event", path, parent: node), "\(path).event"),
            condition: try map["where"].map { (node) throws(ConfigError) in try expression(node, "\(path).where") },
            within: within)
    }

    private mutating func alerts(_ node: Node?) -> [AlertRule] {
        entries(node, "alerts") { (reader, key, value) throws(ConfigError) in try reader.alert(key, value) }
    }

    /// `name: {when: "share(at_risk)", warn: "> 0.15", critical: "> 0.25", for: 10m, keep_firing_for: 5m, min_users: 1000}`.
    private func alert(_ key: Node, _ value: Node) throws(ConfigError) -> AlertRule {
        let name = try yaml.identifier(key, "alerts")
        let path = "alerts.\(name)"
        let map = try yaml.mapping(value, path)
        yaml.checkKeys(map, allowed: ["when", "warn", "critical", "for", "keep_firing_for", "min_users", "min_volume"], path)
        var rule = AlertRule(
            name: name, when: try expression(try yaml.required(map, "when", path, parent: value), "\(path).when"),
            location: yaml.location(key))
        yaml.read(map, "warn", of: path, into: &rule.warn, threshold)
        yaml.read(map, "critical", of: path, into: &rule.critical, threshold)
        yaml.read(map, "for", of: path, into: &rule.holdFor, yaml.duration)
        yaml.read(map, "keep_firing_for", of: path, into: &rule.keepFiringFor, yaml.duration)
        yaml.read(map, "min_users", of: path, into: &rule.minUsers, yaml.positiveInteger)
        yaml.read(map, "min_volume", of: path, into: &rule.minVolume) { (node, path) throws(ConfigError) in
            Located(try yaml.positiveInteger(node, path), at: yaml.location(node))
        }
        return rule
    }

    private func threshold(_ node: Node, _ path: String) throws(ConfigError) -> Located<AlertThreshold>? {
        guard let threshold = AlertThreshold.parse(try yaml.string(node, path)) else {
            throw yaml.error(
                "\(path): expected a comparison and a number in quotes, such as \"> 0.25\" or \"< 1000\" (one of > >= < <=)", at: node)
        }
        return Located(threshold, at: yaml.location(node))
    }
}
