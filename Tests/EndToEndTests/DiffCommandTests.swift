import Foundation
import Testing

@Suite("lifecycled diff")
struct DiffCommandTests {
    static let sample = "config/examples/sample-events.ndjson"

    /// The reference playbook with `edits` applied (each must change it).
    static func edited(_ edits: [(String, String)]) throws -> String {
        var text = try String(contentsOfFile: BinaryRunner.path("config/lifecycled.yaml"), encoding: .utf8)
        for (old, new) in edits {
            #expect(text.contains(old), "\(old)")
            text = text.replacingOccurrences(of: old, with: new)
        }
        return try BinaryRunner.temporaryFile(text, name: "new.yaml")
    }

    static func triggers(_ stdout: String) throws -> [String: [String: Any]] {
        let object = try #require(try JSONSerialization.jsonObject(with: Data(stdout.utf8)) as? [String: Any], "\(stdout)")
        let list = try #require(object["triggers"] as? [[String: Any]])
        return Dictionary(uniqueKeysWithValues: list.map { ($0["trigger"] as! String, $0) })
    }

    static func pair(_ trigger: [String: Any]?, _ key: String) -> [Int?] {
        let pair = trigger?[key] as? [String: Any]
        return [pair?["old"] as? Int, pair?["new"] as? Int]
    }

    static func examples(_ trigger: [String: Any]?, _ key: String) -> [[String: Any]] {
        (trigger?[key] as? [String: Any])?["examples"] as? [[String: Any]] ?? []
    }

    /// Checked by hand on the sample: alice does 3 core actions within 20 minutes of signing up
    /// (1795425000000-1795426200000) and at most 3 in any 7 days, so power_user at ">= 3" adds
    /// her, at her third; dave fires it either way (once: his count stays at 3 or more from his
    /// second day to his last, so the edge never re-arms). carol hits the quota exactly 3 times
    /// and views premium features twice (the second at 1795601700000), so upgrade_ready at
    /// ">= 4" loses her and her conversion (plan_changed to pro 3 days later). The other
    /// triggers read neither threshold.
    @Test("a changed threshold on the sample: exactly the users it should gain and lose, with their evidence")
    func changedThresholds() throws {
        let new = try Self.edited([("core_actions_7d >= 50", "core_actions_7d >= 3"), ("quota_hits_7d >= 3", "quota_hits_7d >= 4")])
        let result = try BinaryRunner.run([
            "diff", "--config", new, "--against", "config/lifecycled.yaml", "--input", Self.sample,
            "--until", "2027-01-31T00:00:00Z", "--json",
        ])
        #expect(result.status == 0, "\(result.stderr)")
        let triggers = try Self.triggers(result.stdout)

        let power = triggers["power_user"]
        #expect(Self.pair(power, "fired") == [1, 2] && Self.pair(power, "users") == [1, 2])
        #expect((power?["gained"] as? [String: Any])?["count"] as? Int == 1 && (power?["lost"] as? [String: Any])?["count"] as? Int == 0)
        let alice = try #require(Self.examples(power, "gained").first)
        #expect(alice["user_id"] as? String == "alice" && alice["fired_at"] as? Int == 1_795_426_200_000)
        #expect((alice["evidence"] as? [String: Any])?["core_actions_7d"] as? Int == 3)

        let upgrade = triggers["upgrade_ready"]
        #expect(Self.pair(upgrade, "fired") == [1, 0] && Self.pair(upgrade, "users") == [1, 0])
        #expect(Self.pair(upgrade, "converted") == [1, 0])
        #expect((upgrade?["gained"] as? [String: Any])?["count"] as? Int == 0)
        let carol = try #require(Self.examples(upgrade, "lost").first)
        #expect(carol["user_id"] as? String == "carol" && carol["fired_at"] as? Int == 1_795_601_700_000)
        let evidence = carol["evidence"] as? [String: Any]
        #expect(evidence?["quota_hits_7d"] as? Int == 3 && evidence?["premium_views_14d"] as? Int == 2 && evidence?["plan"] as? String == "free")

        for name in ["churn_risk", "win_back", "activation_nudge"] {
            #expect(triggers[name]?["unchanged"] as? Bool == true, "\(name)")
        }
        #expect(Self.pair(triggers["churn_risk"], "converted") == [1, 1])

        let text = try BinaryRunner.run([
            "diff", "-c", new, "--against", "config/lifecycled.yaml", "-i", Self.sample, "--until", "2027-01-31T00:00:00Z",
        ])
        #expect(text.status == 0)
        #expect(text.stdout.contains("power_user: fired 1 → 2, users 1 → 2 (gained 1, lost 0)"), "\(text.stdout)")
        #expect(text.stdout.contains("  + alice, first fired 2026-11-23T09:30:00Z: core_actions_7d 3"), "\(text.stdout)")
        #expect(text.stdout.contains("upgrade_ready: fired 1 → 0, users 1 → 0 (gained 0, lost 1), converted 1 → 0, conversion rate 100.0% → -"),
                "\(text.stdout)")
        #expect(text.stdout.contains("  - carol, first fired 2026-11-25T10:15:00Z: plan free, quota_hits_7d 3, premium_views_14d 2"))
        #expect(text.stdout.contains("churn_risk: unchanged: fired 2, users 2, converted 1"))
    }

    @Test("the same rules against themselves change nothing; events on standard input; a missing --against is a usage error")
    func sameRules() throws {
        let input = try Data(contentsOf: URL(fileURLWithPath: BinaryRunner.path(Self.sample)))
        let result = try BinaryRunner.run(
            ["diff", "-c", "config/lifecycled.yaml", "--against", "config/lifecycled.yaml", "--json"], stdinChunks: [input])
        #expect(result.status == 0, "\(result.stderr)")
        let triggers = try Self.triggers(result.stdout)
        #expect(triggers.count == 5 && triggers.values.allSatisfy { $0["unchanged"] as? Bool == true })
        let missing = try BinaryRunner.run(["diff", "-c", "config/lifecycled.yaml", "-i", Self.sample])
        #expect(missing.status == 1 && missing.stderr.contains("--against"), "\(missing.stderr)")
    }
}
