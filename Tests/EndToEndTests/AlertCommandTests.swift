import Foundation
import Testing
import LifecycleTestSupport

@Suite("lifecycled replay and check: alerts")
struct AlertCommandTests {
    static let sample = ReplayCommandTests.sample
    static let until = ReplayCommandTests.until

    /// The reference playbook with alerts the sample's few users cross (its own alerts need
    /// 1,000 users). The playbook's alerts section is its last.
    static func playbook() throws -> String {
        let reference = try String(contentsOfFile: BinaryRunner.path(ReplayCommandTests.config), encoding: .utf8)
        let rules = try #require(reference.components(separatedBy: "\nalerts:\n").first)
        return try BinaryRunner.temporaryFile(rules + """

            alerts:
              gone_quiet: {when: "share(at_risk, dormant)", warn: "> 0.2", critical: "> 0.4", for: 1h, keep_firing_for: 1h}
              churning: {when: "fired(churn_risk, 7d)", warn: "> 0"}
              behind: {when: "lag", critical: "> 1000"}

            """, name: "alerts.yaml")
    }

    @Test("replay back-tests alerts in stream time: the same changes on every run, written apart from the triggers")
    func replayDeterministic() throws {
        let config = try Self.playbook()
        let runs = try (0..<2).map { run in
            let file = TestDirectory.path("alerts-\(run)") + ".ndjson"
            let result = try BinaryRunner.run(["replay", "-c", config, "-i", Self.sample, "--until", Self.until, "--alerts", file])
            #expect(result.status == 0, "\(result.stderr)")
            return (result, try Data(contentsOf: URL(fileURLWithPath: file)))
        }
        #expect(runs[0].1 == runs[1].1)
        let changes = try String(decoding: runs[0].1, as: UTF8.self).split(separator: "\n").map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
        // The sample's users go quiet: the share of at-risk and dormant users crosses warn, then
        // critical once --until's timers make them dormant; churn_risk fires and then ages out.
        let summary = changes.map { "\($0["alert"]!) \($0["state"]!) \($0["level"] as? String ?? "-")" }
        #expect(summary.contains("gone_quiet firing warn") && summary.contains("gone_quiet firing critical"), "\(summary)")
        #expect(summary.contains("churning firing warn") && summary.contains("churning resolved -"), "\(summary)")
        #expect(!summary.contains { $0.hasPrefix("behind") })
        for change in changes {
            #expect(Set(change.keys) == ["alert", "state", "level", "value", "threshold", "since", "at", "reason", "config_version"])
            #expect((change["at"] as? Int ?? 0) >= (change["since"] as? Int ?? .max))
        }
        // Triggers on stdout as without alerts; the changes also in the summary on stderr.
        let plain = try BinaryRunner.run(["replay", "-c", ReplayCommandTests.config, "-i", Self.sample, "--until", Self.until])
        #expect(runs[0].0.stdoutData == plain.stdoutData)
        #expect(runs[0].0.stderr.contains("  alerts (in stream time"), "\(runs[0].0.stderr)")
        #expect(runs[0].0.stderr.contains("    churning: firing warn "), "\(runs[0].0.stderr)")
        #expect(runs[0].0.stderr.contains("    behind: reads lag, which replay does not have: not evaluated"), "\(runs[0].0.stderr)")
    }

    @Test("check summarises the alerts and where their changes go")
    func check() throws {
        let result = try BinaryRunner.run(["check", "--config", ReplayCommandTests.config])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("alerts (3) -> lifecycled.alerts:"), "\(result.stdout)")
        #expect(result.stdout.contains(
            "  at_risk_share: share(at_risk): warn > 0.15, critical > 0.25, for 30m, keep firing 15m, min users 1000"), "\(result.stdout)")
    }
}
