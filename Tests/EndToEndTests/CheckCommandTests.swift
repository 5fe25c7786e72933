import Foundation
import Testing

@Suite("lifecycled check")
struct CheckCommandTests {
    @Test("the reference config validates and is summarised")
    func referenceConfig() throws {
        let result = try BinaryRunner.run(["check", "--config", "config/lifecycled.yaml"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("config/lifecycled.yaml: ok"))
        for name in ["core_actions_7d", "churn_risk", "win_back", "activation_nudge", "upgrade_ready", "power_user"] {
            #expect(result.stdout.contains(name), "summary lacks \(name)")
        }
    }

    /// Each fixture's first line says what `check` must print: `# expect: LINE:COL: fragment`.
    static let brokenConfigs: [String] = {
        let directory = BinaryRunner.path("Tests/EndToEndTests/Fixtures/broken")
        return ((try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [])
            .filter { $0.hasSuffix(".yaml") }.sorted()
    }()

    @Test("there are enough broken configs to mean something")
    func fixtureCount() {
        #expect(Self.brokenConfigs.count >= 8)
    }

    @Test("a broken config prints FILE:LINE:COL: message and exits 1", arguments: brokenConfigs)
    func brokenConfig(name: String) throws {
        let relative = "Tests/EndToEndTests/Fixtures/broken/\(name)"
        let text = try String(contentsOfFile: BinaryRunner.path(relative), encoding: .utf8)
        let header = try #require(text.split(separator: "\n").first.flatMap { $0.split(separator: "# expect: ", maxSplits: 1).last })
        let location = try #require(header.split(separator: " ", maxSplits: 1).first)
        let fragment = header.split(separator: " ", maxSplits: 1).dropFirst().first.map(String.init) ?? ""
        let result = try BinaryRunner.run(["check", "--config", relative])
        #expect(result.status == 1, "\(name): exit \(result.status)")
        #expect(result.stderr.hasPrefix("\(relative):\(location)"), "\(name): \(result.stderr)")
        #expect(result.stderr.contains(fragment), "\(name): \(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("check reports every problem in one run, each as FILE:LINE:COL: message")
    func everyProblem() throws {
        let path = try BinaryRunner.temporaryFile("""
            counters:
              a: {events: any, window: 7x}
              b: {events: any, window: 1d, sum: [x]}
            lifecycle:
              stages: [new, old]
              initial: new
              transitions: [{from: new, to: old, "on": activty}]
            """, name: "several.yaml")
        let result = try BinaryRunner.run(["check", "--config", path])
        #expect(result.status == 1)
        let lines = result.stderr.split(separator: "\n").map(String.init)
        #expect(lines.map { $0.split(separator: ":").dropFirst().prefix(2).joined(separator: ":") } == ["2:28", "3:37", "7:44"], "\(result.stderr)")
        #expect(lines.allSatisfy { $0.hasPrefix(path + ":") }, "\(result.stderr)")
        #expect(result.stdout.isEmpty)
    }

    @Test("a missing config file is a clear usage error")
    func missingFile() throws {
        let result = try BinaryRunner.run(["check", "--config", "no/such/file.yaml"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("no/such/file.yaml"))
    }

    @Test("usage errors exit 1 and --version prints the version")
    func usage() throws {
        let noConfig = try BinaryRunner.run(["check"])
        #expect(noConfig.status == 1)
        #expect(noConfig.stderr.contains("--config"))
        let version = try BinaryRunner.run(["--version"])
        #expect(version.status == 0)
        #expect(version.stdout.contains("."))
    }
}
