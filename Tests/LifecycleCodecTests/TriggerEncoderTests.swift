import Foundation
import LifecycleCodec
import LifecycleEngine
import Testing

@Suite("Trigger encoding")
struct TriggerEncoderTests {
    static let t0: Int64 = 1_795_392_000_000  // 2026-11-23T00:00:00Z
    static let day: Int64 = 86_400_000

    /// Rules whose triggers show every part of the output: a transition with the reason
    /// derived from it (by condition and by activity), a reason of its own that needs
    /// escaping, integer, fractional and whole sums, text with a control character, the
    /// stage, elapsed times, and a holdout's arm.
    static func rules() throws -> CompiledRules {
        func when(_ text: String) -> TriggerRule.Fire { .when(Located(text)) }
        return try CompiledRules(Rules(
            version: "v1",
            counters: [
                CounterRule(name: "visits_7d", events: .names([Located("visit")]), window: 7 * day),
                CounterRule(name: "spend_30d", events: .names([Located("purchase")]), window: 30 * day, aggregation: .sum(path: "props.amount")),
            ],
            attributes: [AttributeRule(name: "plan", path: "props.plan", on: .names([Located("signup")]), defaultValue: "free")],
            lifecycle: LifecycleRule(
                stages: ["new", "active", "at_risk", "back"].map { Located($0) }, initial: Located("new"),
                transitions: [
                    TransitionRule(from: [Located("new")], to: Located("active"), condition: .when(Located("visits_7d >= 2"))),
                    TransitionRule(from: [Located("active")], to: Located("at_risk"), condition: .when(Located("inactive_for >= 7d"))),
                    TransitionRule(from: [Located("at_risk")], to: Located("back"), condition: .activity),
                ]),
            triggers: [
                TriggerRule(name: "churn_risk", fire: .onEnter(Located("at_risk"))),
                TriggerRule(name: "win_back", fire: .onEnter(Located("back"))),
                TriggerRule(name: "spender", fire: when("spend_30d >= 3 and plan != 'gold'"), reason: "spent \"a lot\"\n"),
                TriggerRule(name: "big_spender", fire: when("spend_30d >= 12.5")),
                TriggerRule(name: "lingering", fire: when("stage == 'new' and in_stage_for >= 3d")),
                TriggerRule(name: "visitor", fire: when("visits_7d >= 1"), holdout: Located(5_000)),
            ]))
    }

    /// Each trigger the rules fire on a short story of four users, as encoded.
    static func encodedTriggers() throws -> [String] {
        let rules = try rules()
        var engine = PartitionEngine(rules: rules)
        var output = EngineOutput()
        let quoted = "user \"42\"\n"
        let events = [
            EventRecord(userID: quoted, name: "signup", time: t0, properties: ["props.plan": .string("fr\u{01}ee plan")]),
            EventRecord(userID: quoted, name: "purchase", time: t0 + 1, properties: ["props.amount": .number(3)]),
            EventRecord(userID: quoted, name: "purchase", time: t0 + 2, properties: ["props.amount": .number(9.5)]),
            EventRecord(userID: "b", name: "visit", time: t0 + 3),
            EventRecord(userID: "b", name: "visit", time: t0 + 4),
            EventRecord(userID: "c", name: "visit", time: t0 + 5),
            EventRecord(userID: "d", name: "visit", time: t0 + 6),
            EventRecord(userID: "b", name: "visit", time: t0 + 20 * day),
        ]
        for event in events { engine.ingest(event, into: &output) }
        // One encoder for all, as the daemon and replay keep one: later firings of a form
        // reuse the parts quoted at its first.
        var encoder = TriggerEncoder()
        var lines: [String] = []
        for trigger in output.triggers {
            var bytes: [UInt8] = []
            encoder.encode(trigger, of: output, rules: rules, into: &bytes)
            lines.append(String(decoding: bytes, as: UTF8.self))
        }
        return lines
    }

    @Test("exact bytes of engine-fired triggers, in the SPEC's key order, with escaping")
    func exactBytes() throws {
        let expected = [
            #"{"id":"3515eeb5c894915a5e1c9227c90b1fcf","trigger":"spender","user_id":"user \"42\"\n","fired_at":1795392000001,"reason":"spent \"a lot\"\n","evidence":{"spend_30d":3,"plan":"fr\u0001ee plan","last_seen":1795392000001},"config_version":"v1"}"#,
            #"{"id":"5f60b063439139d0b8a5d4975e79d3b7","trigger":"big_spender","user_id":"user \"42\"\n","fired_at":1795392000002,"reason":"spend_30d >= 12.5","evidence":{"spend_30d":12.5,"last_seen":1795392000002},"config_version":"v1"}"#,
            #"{"id":"8143c89edac1659f4cce76ddbaac9e4f","trigger":"visitor","arm":"control","user_id":"b","fired_at":1795392000003,"reason":"visits_7d >= 1","evidence":{"visits_7d":1,"last_seen":1795392000003},"config_version":"v1"}"#,
            #"{"id":"765bb35319535278666ecc34c763e80d","trigger":"visitor","arm":"control","user_id":"c","fired_at":1795392000005,"reason":"visits_7d >= 1","evidence":{"visits_7d":1,"last_seen":1795392000005},"config_version":"v1"}"#,
            #"{"id":"9ead8a1510355291c31e44b6e2ff0df0","trigger":"visitor","arm":"treatment","user_id":"d","fired_at":1795392000006,"reason":"visits_7d >= 1","evidence":{"visits_7d":1,"last_seen":1795392000006},"config_version":"v1"}"#,
            #"{"id":"a3af7c4e7a2d7603d03cf94b8d3b90a6","trigger":"lingering","user_id":"user \"42\"\n","fired_at":1795651200000,"reason":"stage == 'new' and in_stage_for >= 3d","evidence":{"stage":"new","in_stage_for":259200000,"last_seen":1795392000002},"config_version":"v1"}"#,
            #"{"id":"7057edae304ea997855c6e807abf3a74","trigger":"lingering","user_id":"c","fired_at":1795651200005,"reason":"stage == 'new' and in_stage_for >= 3d","evidence":{"stage":"new","in_stage_for":259200000,"last_seen":1795392000005},"config_version":"v1"}"#,
            #"{"id":"e40057482a5b4111f805019d74983281","trigger":"lingering","user_id":"d","fired_at":1795651200006,"reason":"stage == 'new' and in_stage_for >= 3d","evidence":{"stage":"new","in_stage_for":259200000,"last_seen":1795392000006},"config_version":"v1"}"#,
            #"{"id":"4237e02f748eaa9658de4cb1d75345a8","trigger":"churn_risk","user_id":"b","fired_at":1795996800004,"transition":{"from":"active","to":"at_risk"},"reason":"entered at_risk: inactive_for >= 7d","evidence":{"inactive_for":604800000,"last_seen":1795392000004},"config_version":"v1"}"#,
            #"{"id":"db599afd17622e8f4a8e17eea3025deb","trigger":"win_back","user_id":"b","fired_at":1797120000000,"transition":{"from":"at_risk","to":"back"},"reason":"entered back on activity","evidence":{"last_seen":1797120000000},"config_version":"v1"}"#,
            #"{"id":"c6c7587e5735837e313fa35d955344b3","trigger":"visitor","arm":"control","user_id":"b","fired_at":1797120000000,"reason":"visits_7d >= 1","evidence":{"visits_7d":1,"last_seen":1797120000000},"config_version":"v1"}"#,
        ]
        #expect(try Self.encodedTriggers() == expected)
    }

    @Test("an encoder given other rules quotes their names and reasons, not the first rules'")
    func rulesChange() throws {
        func rules(reason: String, version: String) throws -> CompiledRules {
            try CompiledRules(Rules(
                version: version,
                counters: [CounterRule(name: "visits_7d", events: .names([Located("visit")]), window: 7 * Self.day)],
                lifecycle: LifecycleRule(stages: [Located("new")], initial: Located("new"), transitions: []),
                triggers: [TriggerRule(name: "visitor", fire: .when(Located("visits_7d >= 1")), reason: reason)]))
        }
        let first = try rules(reason: "first", version: "v1"), second = try rules(reason: "second", version: "v2")
        var encoder = TriggerEncoder()
        func encoded(_ rules: CompiledRules) -> String {
            var engine = PartitionEngine(rules: rules)
            var output = EngineOutput()
            engine.ingest(EventRecord(userID: "a", name: "visit", time: Self.t0), into: &output)
            var bytes: [UInt8] = []
            encoder.encode(output.triggers[0], of: output, rules: rules, into: &bytes)
            return String(decoding: bytes, as: UTF8.self)
        }
        for (rules, reason, version) in [(first, "first", "v1"), (second, "second", "v2"), (first, "first", "v1")] {
            let object = try #require(JSONSerialization.jsonObject(with: Data(encoded(rules).utf8)) as? [String: Any])
            #expect(object["reason"] as? String == reason)
            #expect(object["config_version"] as? String == version)
        }
    }

    @Test("parses back as the same values")
    func roundTrip() throws {
        for line in try Self.encodedTriggers() {
            let object = try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
            #expect((object["id"] as? String)?.count == 32)
            #expect(object["config_version"] as? String == "v1")
            if object["trigger"] as? String == "spender" {
                #expect(object["user_id"] as? String == "user \"42\"\n")
                #expect(object["reason"] as? String == "spent \"a lot\"\n")
                #expect((object["evidence"] as? [String: Any])?["plan"] as? String == "fr\u{01}ee plan")
            }
        }
    }

    @Test("conversions, with the arm of a trigger with a holdout")
    func conversion() {
        var bytes: [UInt8] = []
        TriggerEncoder().encode(
            Conversion(trigger: "upgrade_ready", triggerID: "t1", userID: "u", firedAt: 1, convertedAt: 2), into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"conversion":"upgrade_ready","trigger_id":"t1","user_id":"u","fired_at":1,"converted_at":2}"#)
        bytes.removeAll()
        TriggerEncoder().encode(
            Conversion(trigger: "upgrade_ready", triggerID: "t1", userID: "u", firedAt: 1, convertedAt: 2, arm: .control), into: &bytes)
        #expect(String(decoding: bytes, as: UTF8.self) == #"{"conversion":"upgrade_ready","arm":"control","trigger_id":"t1","user_id":"u","fired_at":1,"converted_at":2}"#)
    }
}

@Suite("Alert change encoding")
struct AlertEncoderTests {
    func encoded(_ change: AlertChange) -> String {
        var bytes: [UInt8] = []
        AlertEncoder().encode(change, configVersion: "v1", into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("exact bytes in a fixed key order; null for what a change does not have")
    func exactBytes() {
        let firing = AlertChange(
            alert: "at_risk_share", state: .firing, level: .critical, value: 0.27, threshold: 0.25,
            since: 1_795_380_000_123, at: 1_795_380_600_123, reason: nil)
        #expect(encoded(firing) == #"{"alert":"at_risk_share","state":"firing","level":"critical","value":0.27,"threshold":0.25,"since":1795380000123,"at":1795380600123,"reason":null,"config_version":"v1"}"#)
        let resolved = AlertChange(
            alert: "quiet", state: .resolved, level: nil, value: nil, threshold: nil, since: 1, at: 2, reason: "below min_users (3 < 10)")
        #expect(encoded(resolved) == #"{"alert":"quiet","state":"resolved","level":null,"value":null,"threshold":null,"since":1,"at":2,"reason":"below min_users (3 < 10)","config_version":"v1"}"#)
    }
}
