import Foundation
import LifecycleConfig
import LifecycleEngine
import Testing

@Suite("Config loading")
struct ConfigLoaderTests {
    static let referencePath = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("config/lifecycled.yaml").path

    static let minimal = """
        lifecycle:
          stages: [new]
          initial: new
        """

    /// Every problem loading `text` reports, in file order.
    func loadErrors(_ text: String) -> [ConfigError] {
        do {
            _ = try ConfigLoader.load(text: text, file: "t.yaml")
            return []
        } catch {
            return error.errors
        }
    }

    func loadError(_ text: String) -> ConfigError? { loadErrors(text).first }

    /// Two stages and a transition, for triggers to fire on entering `old`.
    static let twoStages = """
        lifecycle:
          stages: [new, old]
          initial: new
          transitions: [{from: new, to: old, on: activity}]
        """

    @Test("the reference playbook loads with every section")
    func reference() throws {
        let loaded = try ConfigLoader.load(path: Self.referencePath)
        #expect(loaded.rules.counters.map(\.name) == ["core_actions_7d", "active_days_14d", "quota_hits_7d", "premium_views_14d", "revenue_30d"])
        #expect(loaded.rules.counters[1].aggregation == .distinctDays)
        #expect(loaded.rules.counters[4].aggregation == .sum(path: "props.amount"))
        #expect(loaded.rules.lifecycle.stages.count == 6)
        #expect(loaded.rules.lifecycle.transitions.count == 5)
        #expect(loaded.compiled.triggerNames == ["churn_risk", "win_back", "activation_nudge", "upgrade_ready", "power_user"])
        #expect(loaded.configVersion == "reference-2026-11")
        #expect(loaded.settings.kafka.triggerTopics["churn_risk"] == "lifecycled.churn_risk")
        #expect(loaded.rules.eraseOn.map(\.value) == ["user_deleted"])
    }

    @Test("defaults apply when sections are left out; the version is a hash of the file")
    func defaults() throws {
        let loaded = try ConfigLoader.load(text: Self.minimal, file: "t.yaml")
        #expect(loaded.settings == DaemonSettings())
        #expect(loaded.settings.http.port == 9464)
        #expect(loaded.rules.events == EventFields())
        #expect(loaded.configVersion.count == 12)
        let edited = try ConfigLoader.load(text: Self.minimal + "\n# a comment", file: "t.yaml")
        #expect(edited.configVersion != loaded.configVersion)
    }

    @Test("kafka properties pass through as text; trigger topics can be set per trigger")
    func settings() throws {
        let loaded = try ConfigLoader.load(text: """
            kafka:
              brokers: "b1:9092,b2:9092"
              input_topics: events
              properties: {security.protocol: SASL_SSL, linger.ms: 5, enable.idempotence: true}
            http: {listen: "0.0.0.0:8080"}
            state: {dir: /tmp/x, checkpoint_interval: 30s}
            \(Self.minimal)
            """, file: "t.yaml")
        #expect(loaded.settings.kafka.properties == ["security.protocol": "SASL_SSL", "linger.ms": "5", "enable.idempotence": "true"])
        #expect(loaded.settings.kafka.inputTopics == ["events"])
        #expect(loaded.settings.http.host == "0.0.0.0" && loaded.settings.http.port == 8080)
        #expect(loaded.settings.state.checkpointInterval == 30_000)
        let topics = try ConfigLoader.load(text: """
            lifecycle:
              stages: [new, old]
              initial: new
              transitions: [{from: new, to: old, on: activity}]
            triggers:
              hello: {on_enter: old, topic: crm.hello}
            """, file: "t.yaml")
        #expect(topics.settings.kafka.triggerTopics == ["hello": "crm.hello"])
    }

    @Test("YAML 1.2: a quoted key is the same key, e.g. `\"on\": activity` and `'on':`")
    func quotedOnKeys() throws {
        let loaded = try ConfigLoader.load(text: """
            attributes:
              plan: {from: props.plan, 'on': [signup]}
            lifecycle:
              stages: [new, back]
              initial: new
              transitions: [{from: new, to: back, "on": activity}]
            """, file: "t.yaml")
        #expect(loaded.rules.attributes.first?.on.eventNames == ["signup"])
        #expect(loaded.rules.lifecycle.transitions.first?.condition == .activity)
        let twice = try #require(loadError("""
            lifecycle:
              stages: [new, back]
              initial: new
              transitions: [{from: new, to: back, on: activity, "on": activity}]
            """))
        #expect(twice.message.contains("duplicate key 'on'"), "\(twice)")
    }

    @Test("YAML 1.2: the reference playbook with every key quoted reads the same as unquoted")
    func everyKeyQuoted() throws {
        let text = try String(contentsOfFile: Self.referencePath, encoding: .utf8)
        // Every `key:` followed by a space or a line end, alternately double and single quoted.
        let keyPattern = try Regex(#"([A-Za-z_][A-Za-z0-9_.]*):(?=\s)"#)
        var count = 0
        let quoted = text.replacing(keyPattern) { match in
            count += 1
            let quote = count.isMultiple(of: 2) ? "'" : "\""
            return "\(quote)\(match.output[1].substring ?? "")\(quote):"
        }
        #expect(count > 50)
        let plain = try ConfigLoader.load(text: text, file: "t.yaml")
        let loaded = try ConfigLoader.load(text: quoted, file: "t.yaml")
        #expect(loaded.settings == plain.settings)
        #expect(loaded.rules.version == plain.rules.version)
        #expect(loaded.rules.events == plain.rules.events)
        #expect(loaded.rules.counters.map(\.name) == plain.rules.counters.map(\.name))
        #expect(loaded.rules.counters.map(\.aggregation) == plain.rules.counters.map(\.aggregation))
        #expect(loaded.rules.counters.map(\.window) == plain.rules.counters.map(\.window))
        #expect(loaded.rules.attributes.map(\.on.eventNames) == plain.rules.attributes.map(\.on.eventNames))
        #expect(loaded.rules.attributes.map(\.defaultValue) == plain.rules.attributes.map(\.defaultValue))
        #expect(loaded.rules.lifecycle.transitions.map(\.condition.text) == plain.rules.lifecycle.transitions.map(\.condition.text))
        #expect(loaded.rules.lifecycle.stages.map(\.value) == plain.rules.lifecycle.stages.map(\.value))
        #expect(loaded.rules.triggers.map(\.name) == plain.rules.triggers.map(\.name))
        #expect(loaded.rules.triggers.map(\.cooldown) == plain.rules.triggers.map(\.cooldown))
        #expect(loaded.rules.triggers.map { $0.goal?.within } == plain.rules.triggers.map { $0.goal?.within })
        #expect(loaded.rules.eraseOn.map(\.value) == plain.rules.eraseOn.map(\.value))
        #expect(loaded.rules.triggers.map { $0.holdout?.value } == plain.rules.triggers.map { $0.holdout?.value })
        #expect(loaded.rules.holdout.global.value == plain.rules.holdout.global.value && loaded.rules.holdout.salt == plain.rules.holdout.salt)
    }

    @Test("a number where a name belongs is an error naming the field; quoted, it is a name")
    func numberAsName() throws {
        let error = try #require(loadError("erase_on: 5\n\(Self.minimal)"))
        #expect(error.line == 1 && error.column == 11)
        #expect(error.message.hasPrefix("erase_on: expected a name (text), found 5"), "\(error)")
        let inList = try #require(loadError("erase_on: [user_deleted, 5.5]\n\(Self.minimal)"))
        #expect(inList.message.hasPrefix("erase_on[1]: expected a name (text), found 5.5"), "\(inList)")
        let quoted = try ConfigLoader.load(text: "erase_on: \"5\"\n\(Self.minimal)", file: "t.yaml")
        #expect(quoted.rules.eraseOn.map(\.value) == ["5"])
    }

    @Test("the version is at most 128 bytes: it is stamped on every trigger")
    func versionLength() throws {
        let long = String(repeating: "v", count: 2 << 20)
        let error = try #require(loadError("version: \(long)\n\(Self.minimal)"))
        #expect(error.line == 1 && error.column == 10)
        #expect(error.message.hasPrefix("version: 2097152 bytes is too long; at most 128"), "\(error.message.prefix(200))")
        let longest = String(repeating: "v", count: 128)
        #expect(try ConfigLoader.load(text: "version: \(longest)\n\(Self.minimal)", file: "t.yaml").configVersion == longest)
    }

    @Test("state moves with its partitions by default: a changelog per input topic, created when missing; both can be turned off or named")
    func changelogSettings() throws {
        let defaults = try ConfigLoader.load(text: Self.minimal, file: "t.yaml").settings
        #expect(defaults.state.changelog && defaults.kafka.createTopics)
        #expect(defaults.kafka.changelogTopic(for: "user-events") == "lifecycled.user-events.changelog")
        let set = try ConfigLoader.load(text: """
            kafka: {group_id: crm, create_topics: false, changelog_topics: {clicks: crm-state}}
            state: {changelog: false}
            \(Self.minimal)
            """, file: "t.yaml").settings
        #expect(!set.state.changelog && !set.kafka.createTopics)
        #expect(set.kafka.changelogTopic(for: "clicks") == "crm-state")
        #expect(set.kafka.changelogTopic(for: "views") == "crm.views.changelog")
        let error = try #require(loadError("state: {changelog: yes}\n\(Self.minimal)"))
        #expect(error.message == "state.changelog: expected true or false" && error.column == 20, "\(error)")
    }

    @Test("events.max_future: 1h by default, a positive duration when set")
    func maxFuture() throws {
        #expect(try ConfigLoader.load(text: Self.minimal, file: "t.yaml").rules.events.maxFuture == Millis.hour)
        let set = try ConfigLoader.load(text: "events: {max_future: 1d}\n\(Self.minimal)", file: "t.yaml")
        #expect(set.rules.events.maxFuture == Millis.day)
        let zero = try #require(loadError("events: {max_future: 0s}\n\(Self.minimal)"))
        #expect(zero.message == "events.max_future: must be longer than 0" && zero.column == 22, "\(zero)")
    }

    @Test("holdouts: per trigger and global, percentages in steps of 0.01 %, a salt, the holdout topic; defaults without them")
    func holdouts() throws {
        let loaded = try ConfigLoader.load(text: """
            holdout: {global: 2.5%, salt: "2026-q4"}
            kafka: {holdout_topic: crm.holdout}
            \(Self.twoStages)
            triggers:
              hello: {on_enter: old, holdout: 10%}
              tiny: {on_enter: old, holdout: 0.01%}
              plain: {on_enter: old}
            """, file: "t.yaml")
        #expect(loaded.rules.holdout == HoldoutRule(global: Located(250, at: SourceLocation(line: 1, column: 19)), salt: "2026-q4"))
        #expect(loaded.rules.triggers.map { $0.holdout?.value } == [1_000, 1, nil])
        #expect(loaded.compiled.triggerHoldouts == [1_000, 1, 0])
        #expect(loaded.settings.kafka.holdoutTopic == "crm.holdout")
        let defaults = try ConfigLoader.load(text: Self.minimal, file: "t.yaml")
        #expect(defaults.rules.holdout == HoldoutRule() && defaults.rules.holdout.global.value == 0)
        #expect(defaults.settings.kafka.holdoutTopic == "lifecycled.holdout")
    }

    @Test("holdout problems name the file, line, column and field, and say what was expected")
    func holdoutProblems() throws {
        let shapes = loadErrors("""
            holdout: {global: 5, salt: "", globl: 1%}
            \(Self.twoStages)
            triggers:
              a: {on_enter: old, holdout: 10.001%}
              b: {on_enter: old, holdout: ten%}
              c: {on_enter: old, holdout: -5%}
              d: {on_enter: old, holdout: [10%]}
            """)
        // On one line, in the order found: the unknown key first.
        #expect(shapes.map { "\($0.line):\($0.column)" } == ["1:32", "1:19", "1:28", "7:31", "8:31", "9:31", "10:31"], "\(shapes)")
        #expect(shapes[0].message.contains("unknown key 'globl' (did you mean 'global'?)"))
        #expect(shapes[1].message == "holdout.global: expected a percentage such as 10%, 2.5% or 0.01%, found '5'", "\(shapes[1])")
        #expect(shapes[2].message == "holdout.salt: must not be empty")
        #expect(shapes[3].message == "triggers.a.holdout: '10.001%' is not a percentage in steps of 0.01%; expected a percentage such as 10%, 2.5% or 0.01%")
        #expect(shapes[4].message.hasPrefix("triggers.b.holdout: 'ten%' is not a percentage"))
        #expect(shapes[5].message.hasPrefix("triggers.c.holdout: '-5%' is not a percentage"))
        #expect(shapes[6].message.hasPrefix("triggers.d.holdout: expected a percentage"))
        let range = loadErrors("""
            holdout: {global: 50.01%}
            \(Self.twoStages)
            triggers:
              a: {on_enter: old, holdout: 60%}
              b: {on_enter: old, holdout: 50%}
            """)
        #expect(range.map(\.description) == [
            "t.yaml:1:19: holdout.global is 50.01%; expected 0% to 50%",
            "t.yaml:7:31: trigger 'a' holdout is 60%; expected 0% to 50%",
        ])
    }

    @Test("every problem of shape and type is reported in one run, in file order")
    func everyReadingProblem() throws {
        let errors = loadErrors("""
            kafka:
              create_topics: maybe
            events: {max_future: 0s, allowed_lateness: soon}
            counters:
              a: {events: any, window: 7x}
              b: {events: any, window: 1d, widnow: 2d}
            attributes:
              plan: {from: props.plan, default: [free]}
            lifecycle:
              stages: [new, old]
              initial: new
              transitions: [{from: new, to: old, on: activty}]
            triggers:
              t: {on_enter: old, cooldown: 3 days}
            erase_on: 5
            """)
        #expect(errors.map(\.line) == [2, 3, 3, 5, 6, 8, 12, 14, 15], "\(errors)")
        #expect(errors.map(\.message.description).allSatisfy { !$0.isEmpty })
        #expect(errors[4].message.contains("did you mean 'window'"), "\(errors[4])")
    }

    @Test("problems of meaning (conditions, stages) are reported together once the shapes are right")
    func everyRuleProblem() throws {
        let errors = loadErrors("""
            counters:
              a: {events: any, window: 7d}
            lifecycle:
              stages: [new, old, island, lake]
              initial: new
              transitions:
                - {from: new, to: old, when: "b >= 1"}
            triggers:
              t1: {when: "a >= "}
              t2: {when: "stage == 'nowhere'"}
            """)
        #expect(errors.map { "\($0.line):\($0.column)" } == ["4:22", "4:30", "7:35", "9:20", "10:24"], "\(errors)")
        #expect(errors[0].message.contains("'island' is unreachable") && errors[1].message.contains("'lake' is unreachable"))
        #expect(errors[2].message.contains("unknown name 'b'"))
        #expect(errors[3].message.contains("ends too early"))
        #expect(errors[4].message.contains("'nowhere' is not a declared stage"))
    }

    @Test("at most 20 problems are printed, then how many more")
    func printLimit() throws {
        let counters = (0..<25).map { "  c\($0): {events: any, window: soon}" }.joined(separator: "\n")
        do {
            _ = try ConfigLoader.load(text: "counters:\n\(counters)\n\(Self.minimal)", file: "t.yaml")
            Issue.record("loaded")
        } catch {
            #expect(error.errors.count == 25)
            let lines = error.description.split(separator: "\n")
            #expect(lines.count == 21)
            #expect(lines.first == "t.yaml:2:29: counters.c0.window: 'soon' is not a duration; expected e.g. 500ms, 30s, 10m, 12h, 7d or 1d12h")
            #expect(lines.last == "... and 5 more")
        }
    }

    @Test("an unknown key is reported at the key, with the closest known key")
    func unknownKey() throws {
        let error = try #require(loadError("""
            counters:
              c: {events: any, widnow: 7d}
            \(Self.minimal)
            """))
        #expect(error.line == 2 && error.column == 20)
        #expect(error.message.contains("did you mean 'window'"), "\(error)")
    }

    @Test("an empty file, a list at the top and a missing lifecycle are errors")
    func shapeErrors() throws {
        #expect(loadError("")?.message.contains("empty") == true)
        #expect(loadError("- a\n- b")?.message.contains("expected a mapping") == true)
        let missing = try #require(loadError("counters: {}"))
        #expect(missing.message.contains("missing required key 'lifecycle'"))
    }

    @Test("an unreadable file names the file")
    func unreadable() throws {
        do {
            _ = try ConfigLoader.load(path: "/no/such/dir/x.yaml")
            Issue.record("loaded a missing file")
        } catch {
            #expect(error.description.hasPrefix("/no/such/dir/x.yaml"))
        }
    }
}

private extension EventSelector {
    var eventNames: [String]? {
        if case .names(let names) = self { return names.map(\.value) }
        return nil
    }
}

private extension TransitionRule.Condition {
    var text: String {
        switch self {
        case .activity: "activity"
        case .when(let condition): condition.value
        }
    }
}
