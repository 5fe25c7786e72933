@testable import LifecycleEngine
import Testing

@Suite("Comparisons as the orderings that satisfy them")
struct ComparisonTests {
    static let numbers: [Double] = [-.infinity, -2.5, -0.0, 0, 1, 3, 3.000_000_000_1, .greatestFiniteMagnitude, .infinity, .nan]
    static let times: [Int64] = [.min, -1, 0, 1, 604_800_000, .max]

    @Test("the same answer as the operator for every pair, NaN and infinities included", arguments: Comparison.allCases)
    func sameAsOperator(_ comparison: Comparison) {
        let orderings = SatisfyingOrderings(comparison)
        for lhs in Self.numbers {
            for rhs in Self.numbers {
                #expect(orderings.holds(lhs, rhs) == comparison.holds(lhs, rhs), "\(lhs) \(comparison.rawValue) \(rhs)")
            }
        }
        for lhs in Self.times {
            for rhs in Self.times {
                #expect(orderings.holds(lhs, rhs) == comparison.holds(lhs, rhs), "\(lhs) \(comparison.rawValue) \(rhs)")
            }
        }
    }
}
