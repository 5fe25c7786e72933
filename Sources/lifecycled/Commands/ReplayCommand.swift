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
            deterministic: the same config and input give byte-identical triggers, ids included.
            """
    )

    @Option(name: .shortAndLong, help: "The config file (YAML).")
    var config: String

    @OptionGroup var events: ReplayInput

    @Flag(help: "Do not print progress or the summary on standard error.")
    var quiet = false

    func run() throws {
        let loaded = try loadConfig(config)
        var reader = try events.reader(maxLineBytes: loaded.compiled.rules.events.maxEventBytes)
        let progress = ProgressReporter(enabled: !quiet)
        var session = ReplaySession(rules: loaded.compiled, maxFuture: events.maxFutureMillis)
        var stdout = OutputWriter(descriptor: STDOUT_FILENO, name: "standard output")
        let encoder = TriggerEncoder()
        func print(_ output: borrowing EngineOutput) throws {
            for trigger in output.triggers {
                try stdout.append { buffer in
                    encoder.encode(trigger, into: &buffer)
                    buffer.append(UInt8(ascii: "\n"))
                }
            }
        }
        do {
            try reader.forEachLine { line, number in
                try session.feed(line, number: number, emit: print)
                if number & 0xFFFF == 0 { progress.report(linesRead: number, users: session.userCount) }
            }
            try session.finish(until: events.untilTime, emit: print)
            try stdout.flush()
        } catch {
            throw CommandFailure.report("replay failed: \(error)", status: ExitStatus.runtime)
        }
        if !quiet { StandardError.write(session.summary.render(seconds: progress.elapsedSeconds)) }
    }
}
