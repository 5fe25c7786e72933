import LifecycleEngine
import Testing

@Suite("Conditions and rule validation")
struct RuleCompilerTests {
    typealias F = Fixture

    @Test("precedence: not binds tighter than and, and tighter than or")
    func precedence() throws {
        let parsed = try Expression.parse("not a >= 1 or b < 2 and stage == 'x'")
        guard case .or(.not(.compare), .and(.compare, .compare)) = parsed else {
            Issue.record("unexpected tree \(parsed)")
            return
        }
        #expect(try Expression.parse("(a >= 1)").operands.map(\.kind) == [.name("a"), .number(1)])
    }

    @Test("syntax errors carry the offset of the problem", arguments: [
        ("a >= ", 5, "ends too early"),
        ("a >= 3 and", 10, "ends too early"),
        ("a => 3", 2, "unknown operator"),
        ("a >= 'x", 5, "unterminated"),
        ("(a >= 3", 0, "')'"),
        ("a >= 3 b", 7, "after the end"),
        ("a >= 7x", 5, "neither a number nor a duration"),
        ("a", 1, "expected a comparison"),
    ])
    func syntaxErrors(text: String, offset: Int, fragment: String) {
        #expect {
            try Expression.parse(text)
        } throws: { error in
            guard let error = error as? ExpressionError else { return false }
            return error.offset == offset && error.message.contains(fragment)
        }
    }

    func compileError(_ when: String, counters: [CounterRule] = [CounterRule(name: "c", events: .any, window: Millis.day)]) -> RuleError? {
        do {
            _ = try F.rules(
                counters: counters,
                attributes: [AttributeRule(name: "plan", path: "props.plan")],
                stages: ["new", "old"],
                transitions: [TransitionRule(
                    from: [Located("new")], to: Located("old"),
                    condition: .when(Located(when, at: SourceLocation(line: 4, column: 20))))])
            return nil
        } catch {
            return (error as? RuleErrors)?.errors.first
        }
    }

    @Test("semantic errors point at the operand inside the expression", arguments: [
        ("c >= 1 and logins >= 3", 31, "unknown name 'logins'"),
        ("c >= '3'", 25, "counter 'c' is a number"),
        ("plan == 3", 28, "attribute 'plan' is text"),
        ("plan > 'a'", 20, "only be compared with == or !="),
        ("stage == 'gone'", 29, "not a declared stage"),
        ("inactive_for >= 3", 36, "compare it with a duration"),
        ("3 >= 4", 20, "no name on either side"),
    ])
    func semanticErrors(when: String, column: Int, fragment: String) throws {
        let error = try #require(compileError(when))
        #expect(error.location == SourceLocation(line: 4, column: column), "\(error)")
        #expect(error.message.contains(fragment), "\(error)")
    }

    static func repeated(_ piece: String, _ count: Int, separator: String = "") -> String {
        Array(repeating: piece, count: count).joined(separator: separator)
    }

    /// Conditions as deep as those that crashed, by name (the text is too long to print).
    static let deepConditions: [String: (text: String, offset: Int)] = [
        "44,500 parentheses": (repeated("(", 44_500) + "c >= 1" + repeated(")", 44_500), 100),
        "66,000 nots": (repeated("not ", 66_000) + "c >= 1", 400),
        "66,000 ands": (repeated("c >= 1", 66_000, separator: " and "), 99 * 11 + 7),
        "66,000 ors": (repeated("c >= 1", 66_000, separator: " or "), 99 * 10 + 7),
    ]

    /// Each was a stack overflow (SIGSEGV) in the recursive parser or in the tree it built.
    @Test("deep nesting is an error at the first operator too many, not a crash", arguments: deepConditions.keys.sorted())
    func deepNesting(name: String) throws {
        let (text, offset) = try #require(Self.deepConditions[name])
        #expect {
            try Expression.parse(text)
        } throws: { error in
            guard let error = error as? ExpressionError else { return false }
            return error.offset == offset && error.message.contains("nests too deeply: at most 100 levels")
        }
        let error = try #require(compileError(text))
        #expect(error.location == SourceLocation(line: 4, column: 20 + offset), "\(error)")
    }

    @Test("nesting up to the limit compiles")
    func nestingAtTheLimit() {
        for text in [
            Self.repeated("(", 100) + "c >= 1" + Self.repeated(")", 100),
            Self.repeated("not ", 99) + "c >= 1",
            Self.repeated("c >= 1", 100, separator: " and "),
        ] {
            #expect(compileError(text) == nil, "\(text.prefix(20))")
        }
    }

    @Test("a literal on the left is the same comparison flipped")
    func flippedComparison() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "c", events: F.names("x"), window: F.day)],
            triggers: [TriggerRule(name: "t", fire: .when(Located("3 <= c")))]))
        for i in 0..<3 { h.send("u", "x", at: F.t0 + Int64(i)) }
        #expect(h.fired("t").map(\.firedAt) == [F.t0 + 2])
    }

    @Test("stage errors: undeclared target, unreachable stage, on_enter of an unknown stage")
    func stageErrors() {
        #expect(throws: RuleErrors.self) {
            try F.rules(stages: ["new"], transitions: [F.transition(["new"], "gone", when: "true")])
        }
        do {
            _ = try CompiledRules(Rules(lifecycle: LifecycleRule(
                stages: [Located("new"), Located("island", at: SourceLocation(line: 9, column: 3))],
                initial: Located("new"), transitions: [])))
            Issue.record("an unreachable stage compiled")
        } catch {
            #expect(error.errors.map(\.location) == [SourceLocation(line: 9, column: 3)])
            #expect(error.errors.first?.message.contains("unreachable") == true)
        }
        #expect(throws: RuleErrors.self) {
            try F.rules(triggers: [TriggerRule(name: "t", fire: .onEnter(Located("nowhere")))])
        }
    }

    @Test("a condition that turns true as a window empties wakes the user when a bucket expires")
    func counterExpiryWake() throws {
        var h = Harness(try F.rules(
            counters: [CounterRule(name: "logins", events: F.names("login"), window: F.day, resolution: F.hour)],
            stages: ["active", "quiet"],
            transitions: [F.transition(["active"], "quiet", when: "logins < 1"), F.transition(["quiet"], "active")],
            triggers: [TriggerRule(name: "went_quiet", fire: .onEnter(Located("quiet")))]))
        h.send("u", "login", at: F.t0 + 30 * F.minute)  // bucket [t0, t0+1h) leaves at t0+25h
        h.advance(to: F.t0 + 25 * F.hour - 1)
        #expect(h.fired("went_quiet").isEmpty)
        h.advance(to: F.t0 + 30 * F.hour)
        #expect(h.fired("went_quiet").map(\.firedAt) == [F.t0 + 25 * F.hour])
    }

    @Test("durations parse and format")
    func durations() {
        #expect(Millis.parseDuration("7d") == 7 * Millis.day)
        #expect(Millis.parseDuration("1d12h") == 36 * Millis.hour)
        #expect(Millis.parseDuration("250ms") == 250)
        #expect(Millis.parseDuration("2w") == 14 * Millis.day)
        for bad in ["", "7", "d", "7y", "-1d", "7 d", "1.5h"] { #expect(Millis.parseDuration(bad) == nil, "\(bad)") }
        #expect(Millis.formatDuration(36 * Millis.hour) == "1d12h")
    }
}
