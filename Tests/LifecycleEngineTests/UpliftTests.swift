import LifecycleEngine
import Testing

@Suite("Uplift statistics")
struct UpliftTests {
    /// Newcombe (1998), Statistics in Medicine 17:873–890, Table II: the eight worked examples
    /// (a)–(h), method 10 (hybrid score from Wilson intervals), printed to four decimals.
    static let newcombeTableII: [(x1: Int, n1: Int, x2: Int, n2: Int, difference: String, lower: String, upper: String)] = [
        (56, 70, 48, 80, "0.2000", "0.0524", "0.3339"),
        (9, 10, 3, 10, "0.6000", "0.1705", "0.8090"),
        (6, 7, 2, 7, "0.5714", "0.0582", "0.8062"),
        (5, 56, 0, 29, "0.0893", "-0.0381", "0.1926"),
        (0, 10, 0, 20, "0.0000", "-0.1611", "0.2775"),
        (0, 10, 0, 10, "0.0000", "-0.2775", "0.2775"),
        (10, 10, 0, 20, "1.0000", "0.6791", "1.0000"),
        (10, 10, 0, 10, "1.0000", "0.6075", "1.0000"),
    ]

    /// Four decimals, as the paper prints them.
    static func printed(_ value: Double) -> String {
        let scaled = Int((abs(value) * 10_000).rounded())
        let digits = String(scaled % 10_000)
        return (value < 0 && scaled != 0 ? "-" : "") + "\(scaled / 10_000)." + String(repeating: "0", count: 4 - digits.count) + digits
    }

    @Test("the difference and its interval match Newcombe's worked examples to the printed precision", arguments: newcombeTableII.indices)
    func newcombeExamples(example: Int) {
        let row = Self.newcombeTableII[example]
        let (difference, lower, upper) = Uplift.newcombeInterval(row.x1, of: row.n1, row.x2, of: row.n2)
        #expect(Self.printed(difference) == row.difference)
        #expect(Self.printed(lower) == row.lower, "example \(example): \(row.x1)/\(row.n1) vs \(row.x2)/\(row.n2)")
        #expect(Self.printed(upper) == row.upper, "example \(example): \(row.x1)/\(row.n1) vs \(row.x2)/\(row.n2)")
    }

    @Test("Wilson's interval stays within 0 and 1 and contains the observed rate")
    func wilsonBounds() {
        for (successes, trials) in [(0, 1), (1, 1), (0, 100), (100, 100), (3, 7), (500, 1000)] {
            let (lower, upper) = Uplift.wilsonInterval(successes, of: trials)
            let rate = Double(successes) / Double(trials)
            #expect(lower >= 0 && upper <= 1 && lower <= rate && rate <= upper, "\(successes)/\(trials): [\(lower), \(upper)]")
        }
    }

    @Test("below the minimum sample in either arm the uplift is not enough data, naming the arm")
    func notEnoughData() {
        let enough = Uplift.minimumFiredPerArm
        let short = ArmTotals(treatment: ArmCount(fired: 1_000, converted: 400), control: ArmCount(fired: enough - 1, converted: 3))
        guard case .notEnoughData(let reason) = Uplift.of(short) else {
            Issue.record("expected not enough data")
            return
        }
        #expect(reason.contains("control has \(enough - 1)") && !reason.contains("treatment"), "\(reason)")
        let measured = ArmTotals(treatment: ArmCount(fired: 80, converted: 48), control: ArmCount(fired: enough, converted: 6))
        guard case .measured(let estimate) = Uplift.of(measured) else {
            Issue.record("expected an estimate with \(enough) firings in each arm")
            return
        }
        #expect(abs(estimate.difference - (0.6 - 0.2)) < 1e-12)
        #expect(abs(estimate.relativeLift! - 2) < 1e-12, "0.4 over a control rate of 0.2")
        #expect(estimate.isSignificant)
    }

    @Test("relative lift is undefined when no control user converted; an interval spanning zero is not significant")
    func edges() {
        let noControlConversions = ArmTotals(treatment: ArmCount(fired: 50, converted: 5), control: ArmCount(fired: 50, converted: 0))
        guard case .measured(let estimate) = Uplift.of(noControlConversions) else {
            Issue.record("expected an estimate")
            return
        }
        #expect(estimate.relativeLift == nil)
        let equal = ArmTotals(treatment: ArmCount(fired: 100, converted: 30), control: ArmCount(fired: 100, converted: 30))
        guard case .measured(let none) = Uplift.of(equal) else {
            Issue.record("expected an estimate")
            return
        }
        #expect(none.difference == 0 && none.lower < 0 && none.upper > 0 && !none.isSignificant)
    }
}
