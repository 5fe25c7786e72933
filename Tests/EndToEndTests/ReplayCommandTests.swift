import Foundation
import Testing

@Suite("lifecycled replay")
struct ReplayCommandTests {
    static let config = "config/lifecycled.yaml"
    static let sample = "config/examples/sample-events.ndjson"
    static let until = "2027-01-31T00:00:00Z"

    static func triggers(_ output: String) throws -> [[String: Any]] {
        try output.split(separator: "\n").map { line in
            try #require(JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test("the sample makes every trigger of the playbook fire, in the SPEC's format")
    func sampleFiresEverything() throws {
        let result = try BinaryRunner.run(["replay", "--config", Self.config, "--input", Self.sample, "--until", Self.until])
        #expect(result.status == 0, "\(result.stderr)")
        let triggers = try Self.triggers(result.stdout)
        let names = Set(triggers.compactMap { $0["trigger"] as? String })
        #expect(names == ["churn_risk", "win_back", "activation_nudge", "upgrade_ready", "power_user"])
        for trigger in triggers {
            #expect((trigger["id"] as? String)?.count == 32)
            #expect(trigger["user_id"] is String)
            #expect(trigger["fired_at"] is Int)
            #expect(trigger["reason"] is String)
            #expect(trigger["evidence"] is [String: Any])
            #expect(trigger["config_version"] is String)
        }
        let churn = try #require(triggers.first { $0["trigger"] as? String == "churn_risk" })
        let transition = try #require(churn["transition"] as? [String: String])
        #expect(transition == ["from": "engaged", "to": "at_risk"])
        #expect(!triggers.contains { $0["user_id"] as? String == "erin" })  // erased before any trigger
        #expect(result.stderr.contains("conversions: churn_risk 1"), "\(result.stderr)")
        #expect(result.stderr.contains("upgrade_ready 1"), "\(result.stderr)")
        // The playbook's holdouts: arms on those triggers only, and the uplift in the summary.
        let withHoldout: Set = ["churn_risk", "activation_nudge", "upgrade_ready"]
        for trigger in triggers {
            #expect((trigger["arm"] != nil) == withHoldout.contains(trigger["trigger"] as? String ?? ""), "\(trigger)")
        }
        #expect(result.stderr.contains("uplift (conversion rate, treatment minus control, 95 % interval):"), "\(result.stderr)")
        #expect(result.stderr.contains("    churn_risk (held out 10%): treatment "), "\(result.stderr)")
        #expect(result.stderr.contains("not enough data (needs 30 firings in each arm"), "\(result.stderr)")
    }

    @Test("arms are the same in separate runs: a 50 % global holdout splits the sample's triggers alike every time")
    func armsAcrossRuns() throws {
        let text = try String(contentsOfFile: BinaryRunner.path(Self.config), encoding: .utf8)
            .replacingOccurrences(of: "# global: 5%", with: "global: 50%")
        let config = try BinaryRunner.temporaryFile(text, name: "global.yaml")
        let runs = try (0..<2).map { _ in
            try Self.triggers(try BinaryRunner.run(["replay", "-c", config, "-i", Self.sample, "--until", Self.until, "--quiet"]).stdout)
                .map { "\($0["id"] as? String ?? ""):\($0["arm"] as? String ?? "none")" }
        }
        #expect(runs[0].count >= 7 && runs[0] == runs[1])
        #expect(Set(runs[0].map { $0.split(separator: ":")[1] }) == ["treatment", "control"], "\(runs[0])")
    }

    @Test("replaying the same input twice gives byte-identical output")
    func deterministic() throws {
        let first = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--until", Self.until])
        let second = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--until", Self.until])
        #expect(first.status == 0 && second.status == 0)
        #expect(!first.stdoutData.isEmpty)
        #expect(first.stdoutData == second.stdoutData)
    }

    @Test("input arriving in two pieces on stdin gives the same triggers as the whole file")
    func splitInput() throws {
        let whole = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--quiet"])
        let data = try Data(contentsOf: URL(fileURLWithPath: BinaryRunner.path(Self.sample)))
        let lines = data.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: false)
        for cut in [1, lines.count / 3, lines.count / 2 + 7] {
            let head = Data(lines[..<cut].joined(separator: [UInt8(ascii: "\n")])) + Data([UInt8(ascii: "\n")])
            let tail = Data(lines[cut...].joined(separator: [UInt8(ascii: "\n")]))
            // Cut mid-line too: the second chunk starts inside a JSON object.
            let split = try BinaryRunner.run(
                ["replay", "-c", Self.config, "--quiet"],
                stdinChunks: [head + tail.prefix(9), tail.dropFirst(9)], pause: 0.2)
            #expect(split.status == 0)
            #expect(split.stdoutData == whole.stdoutData, "cut at line \(cut)")
        }
    }

    /// Replays the sample with `extra` lines inserted (at 0-based line positions, in order),
    /// and the sample as it is, both `--until` the same time.
    static func replaySample(
        inserting extra: [(at: Int, line: String)]
    ) throws -> (changed: BinaryRunner.Result, reference: BinaryRunner.Result) {
        var lines = try String(contentsOfFile: BinaryRunner.path(sample), encoding: .utf8).split(separator: "\n").map(String.init)
        for (position, line) in extra { lines.insert(line, at: position) }
        let input = try BinaryRunner.temporaryFile(lines.joined(separator: "\n") + "\n", name: "changed.ndjson")
        return (
            try BinaryRunner.run(["replay", "-c", config, "-i", input, "--until", until]),
            try BinaryRunner.run(["replay", "-c", config, "-i", sample, "--until", until]))
    }

    @Test("bad lines are counted with their line numbers and never stop the replay")
    func badLines() throws {
        let (dirty, reference) = try Self.replaySample(inserting: [
            (3, "this is not json"),
            (10, #"{"event":"login","ts":1795392000000}"#),
            (20, #"{"user_id":"zed","event":"login","ts":"yesterday"}"#),
            (30, #"["an","array"]"#),
            (40, ""),
        ])
        #expect(dirty.status == 0, "\(dirty.stderr)")
        #expect(dirty.stdoutData == reference.stdoutData)
        #expect(dirty.stderr.contains("rejected not_json: 1 (line 4)"), "\(dirty.stderr)")
        #expect(dirty.stderr.contains("rejected missing_user_id: 1 (line 11)"), "\(dirty.stderr)")
        #expect(dirty.stderr.contains("rejected bad_time: 1 (line 21)"), "\(dirty.stderr)")
        #expect(dirty.stderr.contains("rejected not_object: 1 (line 31)"), "\(dirty.stderr)")
    }

    @Test("an event more than --max-future ahead of stream time is rejected as bad_time and changes nothing")
    func futureDated() throws {
        let (poisoned, reference) = try Self.replaySample(
            inserting: [(5, #"{"user_id":"alice","event":"core_action","ts":"2089-12-31T00:00:00Z"}"#)])
        #expect(poisoned.status == 0, "\(poisoned.stderr)")
        #expect(poisoned.stdoutData == reference.stdoutData)
        #expect(poisoned.stderr.contains("rejected bad_time: 1 (line 6)"), "\(poisoned.stderr)")
        #expect(poisoned.stderr.contains("late (dropped) 0"), "\(poisoned.stderr)")
        #expect(poisoned.stderr.contains("stream time: \(Self.until)"), "\(poisoned.stderr)")
        // The sample's events are up to a day apart: a bound of an hour rejects some of them.
        let strict = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--max-future", "1h"])
        #expect(strict.stderr.contains("rejected bad_time: "), "\(strict.stderr)")
        let bad = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--max-future", "soon"])
        #expect(bad.status == 1 && bad.stderr.contains("--max-future"), "\(bad.stderr)")
    }

    @Test("--until fires the timers due after the last event; without it they wait")
    func until() throws {
        let without = try Self.triggers(try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--quiet"]).stdout)
        let with = try Self.triggers(try BinaryRunner.run(
            ["replay", "-c", Self.config, "-i", Self.sample, "--quiet", "--until", Self.until]).stdout)
        #expect(with.count > without.count)
        let ids = { (list: [[String: Any]]) in list.compactMap { $0["id"] as? String } }
        #expect(Array(ids(with).prefix(without.count)) == ids(without))
        let bad = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--until", "soon"])
        #expect(bad.status == 1)
        #expect(bad.stderr.contains("--until"))
    }

    @Test("a missing input file exits 1 and names the file")
    func missingInput() throws {
        let result = try BinaryRunner.run(["replay", "-c", Self.config, "-i", "nope.ndjson"])
        #expect(result.status == 1)
        #expect(result.stderr.contains("nope.ndjson"))
    }

    @Test("a directory as input is a usage error (exit 1) naming it")
    func directoryInput() throws {
        let result = try BinaryRunner.run(["replay", "-c", Self.config, "-i", "config/examples"])
        #expect(result.status == 1, "\(result.stderr)")
        #expect(result.stderr.contains("config/examples: is a directory"), "\(result.stderr)")
    }

    @Test("a closed stdout (>&- or a reader that went away) is exit 2 with a message naming it, not a SIGPIPE", arguments: [
        #""$0" "$@" >&-"#,
        #""$0" "$@" | head -c 0; exit ${PIPESTATUS[0]}"#,
    ])
    func stdoutClosed(shell: String) throws {
        let result = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample], shell: shell)
        #expect(result.status == 2, "\(result.stderr)")
        #expect(result.stderr.contains("writing to standard output failed"), "\(result.stderr)")
    }

    /// Peak resident memory of a running process, from /proc.
    static func peakResidentKB(_ pid: Int32) -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("VmHWM:") })
        else { return nil }
        return Int(line.split(separator: " ", omittingEmptySubsequences: true)[1])
    }

    @Test("a line over max_event_bytes is skipped as too_large without being held: 128 MiB through a pipe")
    func hugeLine() throws {
        let lines = try String(contentsOfFile: BinaryRunner.path(Self.sample), encoding: .utf8)
            .split(separator: "\n").map { Data(($0 + "\n").utf8) }
        let block = Data(repeating: UInt8(ascii: "a"), count: 4 << 20)
        let huge = Array(repeating: block, count: 32) + [Data("\n".utf8)]
        var peakKB: Int?
        let result = try BinaryRunner.run(
            ["replay", "-c", Self.config, "--until", Self.until],
            stdinChunks: [lines[..<3].reduce(Data(), +)] + huge + [lines[3...].reduce(Data(), +)],
            afterChunk: { pid, index in if index == huge.count { peakKB = Self.peakResidentKB(pid) } })
        let reference = try BinaryRunner.run(["replay", "-c", Self.config, "-i", Self.sample, "--until", Self.until])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdoutData == reference.stdoutData)
        #expect(result.stderr.contains("rejected too_large: 1 (line 4)"), "\(result.stderr)")
        let peak = try #require(peakKB)
        #expect(peak < 100 << 10, "peak resident memory \(peak) KB while reading a 128 MiB line")
    }
}
