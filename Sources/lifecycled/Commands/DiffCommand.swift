import ArgumentParser
import Foundation
import LifecycleEngine

struct DiffCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "diff",
        abstract: "Back-test a rules change: both rule sets over the same events, compared per trigger.",
        discussion: """
            Replays the events under the new rules (--config) and the old (--against), as replay \
            does, and reports per trigger: fired old → new, the users gained and lost (with the \
            first firing and its evidence of a few), and conversions and conversion rates old → new. \
            Run it before reloading changed rules.
            """
    )

    @Option(name: .shortAndLong, help: "The new rules (YAML).")
    var config: String

    @Option(help: "The rules running now (YAML).")
    var against: String

    @OptionGroup var events: ReplayInput

    @Option(help: "Users gained and lost to show per trigger.")
    var examples = 3

    @Flag(help: "Print the comparison as JSON.")
    var json = false

    func validate() throws {
        guard examples >= 0 else { throw ValidationError("--examples must not be negative") }
    }

    func run() throws {
        let new = try loadConfig(config), old = try loadConfig(against)
        var reader = try events.reader(maxLineBytes: max(new.rules.events.maxEventBytes, old.rules.events.maxEventBytes))
        let progress = ProgressReporter(enabled: true)
        var newSession = ReplaySession(rules: new.compiled, maxFuture: events.maxFutureMillis)
        var oldSession = ReplaySession(rules: old.compiled, maxFuture: events.maxFutureMillis)
        var newFirings = FirstFirings(rules: new.compiled), oldFirings = FirstFirings(rules: old.compiled)
        do {
            try reader.forEachLine { line, number in
                newSession.feed(line, number: number) { newFirings.record($0) }
                oldSession.feed(line, number: number) { oldFirings.record($0) }
                if number & 0xFFFF == 0 { progress.report(linesRead: number, users: newSession.userCount) }
            }
        } catch {
            throw CommandFailure.report("diff failed: \(error)", status: ExitStatus.runtime)
        }
        newSession.finish(until: events.untilTime) { newFirings.record($0) }
        oldSession.finish(until: events.untilTime) { oldFirings.record($0) }
        let diff = RulesDiff(
            old: .init(rules: old.compiled, summary: oldSession.summary, firings: oldFirings),
            new: .init(rules: new.compiled, summary: newSession.summary, firings: newFirings),
            examples: examples)
        let input = events.input.flatMap { $0 == "-" ? nil : $0 } ?? "<stdin>"
        if json {
            FileHandle.standardOutput.write(diff.json(newPath: config, oldPath: against, inputPath: input) + Data("\n".utf8))
        } else {
            print(diff.text(newPath: config, oldPath: against, inputPath: input), terminator: "")
        }
    }
}
