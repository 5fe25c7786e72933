import ArgumentParser
import Glibc
import LifecycleCodec
import LifecycleEngine

struct ReplayCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "replay",
        abstract: "Back-test rules offline: NDJSON events in, NDJSON triggers on stdout, a summary on stderr.",
        discussion: """
            The input is one partition: stream time is the largest event time seen. Bad lines are \
            counted by reason (with their line numbers) and never stop the replay. The output is \
            deterministic: the same config and input give byte-identical triggers, ids included. \
            The rules' alerts are evaluated in stream time; their changes are listed in the summary \
            and written to --alerts FILE as on the alerts topic.
            """
    )

    @Option(name: .shortAndLong, help: "The config file (YAML).")
    var config: String

    @OptionGroup var events: ReplayInput

    @Option(help: ArgumentHelp("Write the alerts' changes to FILE, one JSON object a line as on the alerts topic.", valueName: "FILE"))
    var alerts: String?

    @Flag(help: "Do not print progress or the summary on standard error.")
    var quiet = false

    func run() throws {
        let loaded = try loadConfig(config)
        var reader = try events.reader(maxLineBytes: loaded.compiled.rules.events.maxEventBytes)
        let progress = ProgressReporter(enabled: !quiet)
        var session = ReplaySession(rules: loaded.compiled, maxFuture: events.maxFutureMillis)
        var stdout = OutputWriter(descriptor: STDOUT_FILENO, name: "standard output")
        var encoder = TriggerEncoder()
        func print(_ output: borrowing EngineOutput) throws {
            for trigger in output.triggers {
                try stdout.append { buffer in
                    encoder.encode(trigger, of: output, rules: loaded.compiled, into: &buffer)
                    buffer.append(UInt8(ascii: "\n"))
                }
            }
        }
        var alertReplay = AlertReplay(rules: loaded.compiled)
        var alertFile = try alerts.map { path in OutputWriter(descriptor: try Self.create(path), name: path) }
        let alertEncoder = AlertEncoder()
        func record(_ changes: ArraySlice<AlertChange>) throws {
            for change in changes {
                try alertFile?.append { buffer in
                    alertEncoder.encode(change, configVersion: loaded.configVersion, into: &buffer)
                    buffer.append(UInt8(ascii: "\n"))
                }
            }
        }
        do {
            try reader.forEachLine { line, number in
                try session.feed(line, number: number, emit: print)
                try record(alertReplay.sample(session))
                if number & 0xFFFF == 0 { progress.report(linesRead: number, users: session.userCount) }
            }
            if let until = events.untilTime {
                for step in alertReplay.steps(from: session.streamTime, to: until) {
                    try session.advance(to: step, emit: print)
                    try record(alertReplay.sample(session))
                }
            }
            try session.finish(until: events.untilTime, emit: print)
            try record(alertReplay.sample(session, final: true))
            try stdout.flush()
            try alertFile?.flush()
        } catch {
            throw CommandFailure.report("replay failed: \(error)", status: ExitStatus.runtime)
        }
        if !quiet {
            let alertLines = alertReplay.lines(indent: "  ").map { $0 + "\n" }.joined()
            StandardError.write(session.summary.render(seconds: progress.elapsedSeconds) + alertLines)
        }
    }

    /// Opens `path` for writing, emptied; exits 1 naming it if it cannot be.
    private static func create(_ path: String) throws -> Int32 {
        let descriptor = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0o644)
        guard descriptor >= 0 else {
            throw CommandFailure.report("--alerts \(path): cannot write: \(String(cString: strerror(errno)))", status: ExitStatus.usage)
        }
        return descriptor
    }
}
