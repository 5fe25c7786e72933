import Foundation
import LifecycleTestSupport
import Testing

@Suite("lifecycled demo")
struct DemoCommandTests {
    @Test("a 60 s demo fires every trigger of the playbook, shows each holdout's uplift (positive: reached users respond), exits 0 and leaves no state behind")
    func sixtySeconds() throws {
        // Its own temporary directory, to see that the demo's checkpoints go with it.
        let temporary = TestDirectory.path("demo-tmp")
        try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: true)
        let result = try BinaryRunner.run(["demo", "--duration", "60", "--listen", "127.0.0.1:0"], environment: ["TMPDIR": temporary])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(try FileManager.default.contentsOfDirectory(atPath: temporary) == [])
        #expect(result.stdout.contains("not for production"))
        #expect(result.stdout.contains("every trigger of the playbook fired"), "\(result.stdout.suffix(1500))")
        #expect(result.stdout.contains("stages:"))
        // The last summary's uplift lines. churn_risk and activation_nudge move half of those
        // reached against a low baseline: clearly positive. upgrade_ready's audience is smaller
        // and half upgrade anyway: measured, its interval may still reach zero.
        let lines = result.stdout.split(separator: "\n")
        func uplift(_ trigger: String) throws -> Substring {
            try #require(lines.last { $0.hasPrefix("    \(trigger) (held out ") }, "\(result.stdout.suffix(1500))")
        }
        for trigger in ["churn_risk", "activation_nudge"] {
            let line = try uplift(trigger)
            #expect(line.contains("; uplift +") && !line.contains("not significant"), "\(line)")
        }
        #expect(try uplift("upgrade_ready").contains("; uplift "))
    }
}
