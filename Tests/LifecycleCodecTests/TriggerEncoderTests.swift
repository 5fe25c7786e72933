import Foundation
import LifecycleCodec
import LifecycleEngine
import Testing

@Suite("Trigger encoding")
struct TriggerEncoderTests {
    let trigger = Trigger(
        id: "abc", name: "churn_risk", userID: "u\"42\n", firedAt: 1_795_984_800_123,
        transition: StageChange(from: "engaged", to: "at_risk"), reason: "no activity for 7d",
        evidence: [Evidence("logins_7d", .integer(0)), Evidence("revenue", .number(12.5)), Evidence("whole", .number(3)),
                   Evidence("plan", .text("fr\u{01}ee"))],
        configVersion: "v1")

    func encoded(_ trigger: Trigger) -> String {
        var bytes: [UInt8] = []
        TriggerEncoder().encode(trigger, into: &bytes)
        return String(decoding: bytes, as: UTF8.self)
    }

    @Test("exact bytes in the SPEC's key order, with escaping")
    func exactBytes() {
        #expect(encoded(trigger) == #"{"id":"abc","trigger":"churn_risk","user_id":"u\"42\n","fired_at":1795984800123,"transition":{"from":"engaged","to":"at_risk"},"reason":"no activity for 7d","evidence":{"logins_7d":0,"revenue":12.5,"whole":3,"plan":"fr\u0001ee"},"config_version":"v1"}"#)
    }

    @Test("parses back as the same values; no transition key for condition triggers")
    func roundTrip() throws {
        var conditionTrigger = trigger
        conditionTrigger.transition = nil
        let object = try #require(JSONSerialization.jsonObject(with: Data(encoded(conditionTrigger).utf8)) as? [String: Any])
        #expect(object["user_id"] as? String == "u\"42\n")
        #expect(object["fired_at"] as? Int == 1_795_984_800_123)
        #expect(object["transition"] == nil)
        #expect((object["evidence"] as? [String: Any])?["plan"] as? String == "fr\u{01}ee")
    }

    @Test("a trigger with a holdout carries its arm after its name; one without has no arm key")
    func arm() {
        var control = trigger
        control.arm = .control
        control.transition = nil
        #expect(encoded(control).hasPrefix(#"{"id":"abc","trigger":"churn_risk","arm":"control","user_id":"#))
        control.arm = .treatment
        #expect(encoded(control).contains(#""trigger":"churn_risk","arm":"treatment","user_id":"#))
        #expect(!encoded(trigger).contains(#""arm""#))
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
