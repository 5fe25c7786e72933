/// A condition lowered to indices into the user's state, as a tree for analysis; the engine
/// runs its flat form (`ConditionProgram`).
indirect enum Condition: Sendable {
    case constant(Bool)
    case not(Condition)
    case and(Condition, Condition)
    case or(Condition, Condition)
    case counter(Int, Comparison, Double)
    case counters(Int, Comparison, Int)
    case attribute(Int, equal: Bool, UInt16)
    case stage(equal: Bool, UInt8)
    case elapsed(TimeBase, Comparison, Int64)

    var timeAtoms: [TimeAtom] {
        switch self {
        case .constant, .counter, .counters, .attribute, .stage: []
        case .not(let inner): inner.timeAtoms
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.timeAtoms + rhs.timeAtoms
        case .elapsed(let base, let op, let threshold): [TimeAtom(base: base, comparison: op, threshold: threshold)]
        }
    }

    /// Appends the condition's tests in branch form, each leading to `ifTrue` or `ifFalse`
    /// by its outcome; returns where evaluation starts. The right operand is appended
    /// first so the left one can lead to it: `and` and `or` skip it once the left decides.
    func emit(into steps: inout [Step], ifTrue: Int32, ifFalse: Int32, scales: [Double]) -> Int32 {
        let test: ConditionTest
        switch self {
        case .constant(let value): return value ? ifTrue : ifFalse
        case .not(let inner): return inner.emit(into: &steps, ifTrue: ifFalse, ifFalse: ifTrue, scales: scales)
        case .and(let lhs, let rhs):
            let right = rhs.emit(into: &steps, ifTrue: ifTrue, ifFalse: ifFalse, scales: scales)
            return lhs.emit(into: &steps, ifTrue: right, ifFalse: ifFalse, scales: scales)
        case .or(let lhs, let rhs):
            let right = rhs.emit(into: &steps, ifTrue: ifTrue, ifFalse: ifFalse, scales: scales)
            return lhs.emit(into: &steps, ifTrue: ifTrue, ifFalse: right, scales: scales)
        case .counter(let index, let op, let value): test = .counter(index, SatisfyingOrderings(op), value)
        case .counters(let lhs, let op, let rhs): test = .counters(lhs, scales[rhs], SatisfyingOrderings(op), rhs, scales[lhs])
        case .attribute(let index, let equal, let value): test = .attribute(index, equal: equal, value)
        case .stage(let equal, let stage): test = .stage(equal: equal, stage)
        case .elapsed(let base, let op, let threshold): test = .elapsed(base, SatisfyingOrderings(op), threshold)
        }
        steps.append(Step(test: test, ifTrue: ifTrue, ifFalse: ifFalse))
        return Int32(steps.count - 1)
    }

    /// Whether some counter comparison can turn true (for the whole condition) as a counter
    /// changes without an event, when a bucket leaves its window: counts only fall then, so
    /// `logins_7d >= 3` cannot, but `logins_7d < 1` can; a sum may hold negative amounts,
    /// so any comparison of one can.
    func canBecomeTrueAsWindowsSlide(negated: Bool, sums: Set<Int>) -> Bool {
        switch self {
        case .constant, .attribute, .stage, .elapsed: false
        case .not(let inner): inner.canBecomeTrueAsWindowsSlide(negated: !negated, sums: sums)
        case .and(let lhs, let rhs), .or(let lhs, let rhs):
            lhs.canBecomeTrueAsWindowsSlide(negated: negated, sums: sums)
                || rhs.canBecomeTrueAsWindowsSlide(negated: negated, sums: sums)
        case .counters: true
        case .counter(let index, let op, _):
            if sums.contains(index) { true } else {
                switch op {
                case .equal, .notEqual: true
                case .less, .lessOrEqual: !negated
                case .greater, .greaterOrEqual: negated
                }
            }
        }
    }

    var readsStage: Bool {
        switch self {
        case .constant, .attribute, .counter, .counters, .elapsed: false
        case .stage: true
        case .not(let inner): inner.readsStage
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.readsStage || rhs.readsStage
        }
    }

    var readsCounters: Bool {
        switch self {
        case .constant, .attribute, .stage, .elapsed: false
        case .counter, .counters: true
        case .not(let inner): inner.readsCounters
        case .and(let lhs, let rhs), .or(let lhs, let rhs): lhs.readsCounters || rhs.readsCounters
        }
    }
}

/// One comparison of a condition. The payloads are plain values, so evaluating a
/// condition touches no reference counts and needs no recursion.
enum ConditionTest: Sendable {
    /// A counter's stored value against a threshold in the same units.
    case counter(Int, SatisfyingOrderings, Double)
    /// Two counters, each stored value multiplied by the other's scale so units agree.
    case counters(Int, Double, SatisfyingOrderings, Int, Double)
    case attribute(Int, equal: Bool, UInt16)
    case stage(equal: Bool, UInt8)
    case elapsed(TimeBase, SatisfyingOrderings, Int64)
}

/// A comparison as the orderings of its operands that satisfy it. A test is then a few
/// flag instructions, where a switch on the operator jumped through a table in every test
/// of the per-event condition loops.
struct SatisfyingOrderings: Sendable, Equatable {
    /// 1: less, 2: equal, 4: greater, 8: unordered (a NaN, which only `!=` accepts).
    private let bits: UInt8

    init(_ comparison: Comparison) {
        bits = switch comparison {
        case .less: 1
        case .lessOrEqual: 3
        case .greater: 4
        case .greaterOrEqual: 6
        case .equal: 2
        case .notEqual: 13
        }
    }

    /// `Comparison.holds`, without a branch on the operator.
    @inline(__always) func holds(_ lhs: Double, _ rhs: Double) -> Bool {
        let less: UInt8 = lhs < rhs ? 1 : 0, equal: UInt8 = lhs == rhs ? 2 : 0, greater: UInt8 = lhs > rhs ? 4 : 0
        let ordering = less | equal | greater
        return bits & (ordering == 0 ? 8 : ordering) != 0
    }

    @inline(__always) func holds(_ lhs: Int64, _ rhs: Int64) -> Bool {
        let less: UInt8 = lhs < rhs ? 1 : 0, equal: UInt8 = lhs == rhs ? 2 : 0, greater: UInt8 = lhs > rhs ? 4 : 0
        return bits & (less | equal | greater) != 0
    }
}

/// A test and where evaluation goes on after it: the index of the next step in
/// `CompiledRules.steps`, or `ConditionProgram.holds` / `.fails` once the outcome is known.
struct Step: Sendable {
    var test: ConditionTest
    var ifTrue: Int32
    var ifFalse: Int32
}

/// A compiled condition: where its steps start in `CompiledRules.steps` (or its outcome,
/// for a condition that needs no test).
struct ConditionProgram: Sendable {
    var entry: Int32
    static let holds: Int32 = -1
    static let fails: Int32 = -2
}

/// A compiled condition with what the rule compiler needs to know about it.
struct CompiledCondition {
    var program: ConditionProgram
    var tree: Condition
    var evidence: [EvidenceSource]
}

/// Type-checks expressions against the declared names and lowers them to programs.
struct ConditionCompiler {
    let counters: [String: Int]
    /// Grows as string literals compared with attributes are interned.
    var attributes: [CompiledAttribute]
    let stages: [String: UInt8]
    let counterNames: [String]
    /// What a counter's stored value is multiplied by (sums are kept in hundredths).
    let counterScales: [Double]
    /// The steps of every condition compiled so far.
    private(set) var steps: [Step] = []

    private enum Name {
        case counter(Int), attribute(Int), stage, elapsed(TimeBase)
    }

    mutating func compile(_ text: Located<String>) throws(RuleError) -> CompiledCondition {
        let expression: Expression
        do {
            expression = try Expression.parse(text.value)
        } catch {
            throw RuleError("invalid condition: \(error.message)", at: text.location.advanced(by: error.offset))
        }
        var evidence: [EvidenceSource] = []
        let condition = try lower(expression, text.location, &evidence)
        let entry = condition.emit(
            into: &steps, ifTrue: ConditionProgram.holds, ifFalse: ConditionProgram.fails, scales: counterScales)
        return CompiledCondition(program: ConditionProgram(entry: entry), tree: condition, evidence: evidence)
    }

    private mutating func lower(
        _ expression: Expression, _ location: SourceLocation, _ evidence: inout [EvidenceSource]
    ) throws(RuleError) -> Condition {
        switch expression {
        case .literal(let value): return .constant(value)
        case .not(let inner): return .not(try lower(inner, location, &evidence))
        case .and(let lhs, let rhs): return .and(try lower(lhs, location, &evidence), try lower(rhs, location, &evidence))
        case .or(let lhs, let rhs): return .or(try lower(lhs, location, &evidence), try lower(rhs, location, &evidence))
        case .compare(let lhs, let op, let rhs):
            if case .name = lhs.kind {
                return try comparison(lhs, op, rhs, location, &evidence)
            }
            if case .name = rhs.kind {
                return try comparison(rhs, op.swapped, lhs, location, &evidence)
            }
            throw RuleError(
                "this comparison has no name on either side: compare a counter, attribute, stage, inactive_for or in_stage_for",
                at: location.advanced(by: lhs.offset))
        }
    }

    private func resolve(_ name: String, at location: SourceLocation) throws(RuleError) -> Name {
        if let index = counters[name] { return .counter(index) }
        if let index = attributes.firstIndex(where: { $0.name == name }) { return .attribute(index) }
        switch name {
        case "stage": return .stage
        case "inactive_for": return .elapsed(.lastSeen)
        case "in_stage_for": return .elapsed(.stageEntered)
        default:
            let known = counterNames + attributes.map(\.name) + ["stage", "inactive_for", "in_stage_for"]
            throw RuleError("unknown name '\(name)': expected one of \(known.joined(separator: ", "))", at: location)
        }
    }

    private mutating func comparison(
        _ lhs: Operand, _ op: Comparison, _ rhs: Operand, _ base: SourceLocation, _ evidence: inout [EvidenceSource]
    ) throws(RuleError) -> Condition {
        guard case .name(let name) = lhs.kind else { preconditionFailure("lhs is a name by construction") }
        let nameLocation = base.advanced(by: lhs.offset)
        let valueLocation = base.advanced(by: rhs.offset)
        func note(_ source: EvidenceSource) {
            if !evidence.contains(source) { evidence.append(source) }
        }
        switch try resolve(name, at: nameLocation) {
        case .counter(let index):
            note(.counter(index))
            switch rhs.kind {
            // Rounded to a millionth of the unit: 0.29 is 29 hundredths, not 28.999999999999996.
            case .number(let value): return .counter(index, op, (value * counterScales[index] * 1e6).rounded() / 1e6)
            case .name(let other):
                guard case .counter(let otherIndex) = try resolve(other, at: valueLocation) else {
                    throw RuleError("counter '\(name)' can only be compared with a number or another counter", at: valueLocation)
                }
                note(.counter(otherIndex))
                return .counters(index, op, otherIndex)
            case .string, .duration:
                throw RuleError("counter '\(name)' is a number: compare it with a number such as 3", at: valueLocation)
            }
        case .attribute(let index):
            note(.attribute(index))
            guard case .string(let value) = rhs.kind else {
                throw RuleError("attribute '\(name)' is text: compare it with a quoted string such as 'free'", at: valueLocation)
            }
            guard op == .equal || op == .notEqual else {
                throw RuleError("attribute '\(name)' can only be compared with == or !=", at: base.advanced(by: lhs.offset))
            }
            return .attribute(index, equal: op == .equal, intern(value, attribute: index))
        case .stage:
            note(.stage)
            guard case .string(let value) = rhs.kind, op == .equal || op == .notEqual else {
                throw RuleError("stage can only be compared with == or != and a quoted stage name such as 'new'", at: valueLocation)
            }
            guard let stage = stages[value] else {
                throw RuleError(
                    "'\(value)' is not a declared stage: expected one of \(stages.sorted { $0.value < $1.value }.map(\.key).joined(separator: ", "))",
                    at: valueLocation)
            }
            return .stage(equal: op == .equal, stage)
        case .elapsed(let timeBase):
            note(.elapsed(timeBase))
            guard case .duration(let threshold) = rhs.kind else {
                throw RuleError("\(name) is a duration: compare it with a duration such as 7d or 12h", at: valueLocation)
            }
            return .elapsed(timeBase, op, threshold)
        }
    }

    private mutating func intern(_ value: String, attribute: Int) -> UInt16 {
        if let index = attributes[attribute].values.firstIndex(of: value) { return UInt16(index) }
        attributes[attribute].values.append(value)
        return UInt16(attributes[attribute].values.count - 1)
    }
}
