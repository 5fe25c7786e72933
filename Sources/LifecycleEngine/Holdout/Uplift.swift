/// Did reaching users work? A trigger's conversion rate among users reached (treatment)
/// against users held out (control), and the difference with its 95 % confidence interval by
/// Newcombe's hybrid score method (Newcombe 1998, Statistics in Medicine 17:873–890, method
/// 10): each arm's Wilson score interval, combined. Unlike the textbook (Wald) interval it
/// keeps close to 95 % coverage with small arms and with rates near 0 or 1, and it needs no
/// iteration.
public enum Uplift {
    /// Below this many firings in either arm the difference is reported as not enough data:
    /// the interval would be valid, but too wide to act on.
    public static let minimumFiredPerArm = 30
    /// The standard normal quantile for a two-sided 95 % interval.
    static let z95 = 1.959_963_984_540_054

    public enum Result: Sendable, Equatable {
        case measured(Estimate)
        /// `reason` says which arm falls short.
        case notEnoughData(reason: String)
    }

    public struct Estimate: Sendable, Equatable {
        /// Treatment rate minus control rate.
        public var difference: Double
        /// The 95 % confidence interval of `difference`.
        public var lower: Double
        public var upper: Double
        /// `difference` over the control rate; nil when no control user converted.
        public var relativeLift: Double?
        /// Whether the interval excludes zero.
        public var isSignificant: Bool { lower > 0 || upper < 0 }
    }

    /// The uplift of `totals`, or why it cannot be told yet.
    public static func of(_ totals: ArmTotals) -> Result {
        let short = Arm.allCases.filter { totals[$0].fired < minimumFiredPerArm }
        guard short.isEmpty else {
            let counts = short.map { "\($0.rawValue) has \(totals[$0].fired)" }.joined(separator: ", ")
            return .notEnoughData(reason: "needs \(minimumFiredPerArm) firings in each arm; \(counts)")
        }
        let (difference, lower, upper) = newcombeInterval(
            totals.treatment.converted, of: totals.treatment.fired, totals.control.converted, of: totals.control.fired)
        let controlRate = totals.control.rate ?? 0
        return .measured(Estimate(
            difference: difference, lower: lower, upper: upper,
            relativeLift: controlRate > 0 ? difference / controlRate : nil))
    }

    /// Wilson's score interval for `successes` out of `trials` (at least one).
    public static func wilsonInterval(_ successes: Int, of trials: Int) -> (lower: Double, upper: Double) {
        let n = Double(trials), p = Double(successes) / n, z2 = z95 * z95
        let centre = p + z2 / (2 * n)
        let halfWidth = z95 * (p * (1 - p) / n + z2 / (4 * n * n)).squareRoot()
        let scale = 1 + z2 / n
        // At 0 and n the bounds are exactly 0 and 1; rounding must not move them past the rate.
        return (successes == 0 ? 0 : (centre - halfWidth) / scale, successes == trials ? 1 : (centre + halfWidth) / scale)
    }

    /// Newcombe's hybrid score interval for p1 − p2, from each proportion's Wilson interval.
    public static func newcombeInterval(
        _ successes1: Int, of trials1: Int, _ successes2: Int, of trials2: Int
    ) -> (difference: Double, lower: Double, upper: Double) {
        let p1 = Double(successes1) / Double(trials1), p2 = Double(successes2) / Double(trials2)
        let (l1, u1) = wilsonInterval(successes1, of: trials1)
        let (l2, u2) = wilsonInterval(successes2, of: trials2)
        let difference = p1 - p2
        let below = ((p1 - l1) * (p1 - l1) + (u2 - p2) * (u2 - p2)).squareRoot()
        let above = ((u1 - p1) * (u1 - p1) + (p2 - l2) * (p2 - l2)).squareRoot()
        return (difference, difference - below, difference + above)
    }
}

/// The two arms of a holdout: users reached, and users held out (their triggers are recorded,
/// never acted on).
public enum Arm: String, Sendable, CaseIterable, Hashable {
    case treatment, control
}

/// Firings and conversions in one arm.
public struct ArmCount: Sendable, Equatable {
    public var fired = 0
    public var converted = 0
    public init(fired: Int = 0, converted: Int = 0) {
        self.fired = fired
        self.converted = converted
    }
    /// Converted over fired; nil before any firing.
    public var rate: Double? { fired > 0 ? Double(converted) / Double(fired) : nil }
}

/// One trigger's firings and conversions in each arm. A trigger without a holdout reaches
/// everyone, so all of it counts as treatment.
public struct ArmTotals: Sendable, Equatable {
    public var treatment = ArmCount()
    public var control = ArmCount()
    public init(treatment: ArmCount = ArmCount(), control: ArmCount = ArmCount()) {
        self.treatment = treatment
        self.control = control
    }

    public subscript(arm: Arm) -> ArmCount {
        get { arm == .treatment ? treatment : control }
        set {
            if arm == .treatment { treatment = newValue } else { control = newValue }
        }
    }

    public var fired: Int { treatment.fired + control.fired }
    public var converted: Int { treatment.converted + control.converted }

    public static func += (total: inout ArmTotals, part: ArmTotals) {
        for arm in Arm.allCases {
            total[arm].fired += part[arm].fired
            total[arm].converted += part[arm].converted
        }
    }
}
