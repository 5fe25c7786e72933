import LifecycleEngine

/// The uplift of each trigger with a holdout, as lines of text (replay's summary, the demo).
enum UpliftReport {
    static func lines(rules: CompiledRules, totals: [ArmTotals], indent: String) -> [String] {
        let measured = rules.triggerNames.indices.filter { rules.hasHoldout($0) && $0 < totals.count }
        guard !measured.isEmpty else { return [] }
        var lines = [indent + "uplift (conversion rate, treatment minus control, 95 % interval):"]
        for trigger in measured {
            lines.append(indent + "  \(rules.triggerNames[trigger]) (held out \(share(rules.controlShare(ofTrigger: trigger)))): "
                + describe(totals[trigger], hasGoal: rules.rules.triggers[trigger].goal != nil))
        }
        return lines
    }

    static func describe(_ totals: ArmTotals, hasGoal: Bool) -> String {
        let arms = Arm.allCases.map { arm in
            let count = totals[arm]
            return "\(arm.rawValue) \(count.fired) fired, \(count.converted) converted" + (count.rate.map { " (\(percent($0)))" } ?? "")
        }.joined(separator: "; ")
        guard hasGoal else { return arms + "; no goal, nothing to measure" }
        switch Uplift.of(totals) {
        case .notEnoughData(let reason):
            return arms + "; not enough data (\(reason))"
        case .measured(let estimate):
            let lift = estimate.relativeLift.map { ", relative \(signed(percent($0)))" } ?? ""
            return arms + "; uplift \(signed(points(estimate.difference))) points "
                + "[\(points(estimate.lower)), \(points(estimate.upper))]\(lift)"
                + (estimate.isSignificant ? "" : ", not significant")
        }
    }

    private static func percent(_ fraction: Double) -> String { fixed(fraction * 100, decimals: 1) + "%" }
    /// A holdout's share to 0.01 %, without trailing zeros: 10%, 14.5%, 12.25%.
    static func share(_ fraction: Double) -> String {
        var text = fixed(fraction * 100, decimals: 2)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "%"
    }
    private static func points(_ fraction: Double) -> String { fixed(fraction * 100, decimals: 1) }
    private static func signed(_ text: String) -> String { text.hasPrefix("-") ? text : "+" + text }
}

/// `value` rounded to `decimals` places, as text (no Foundation formatting needed).
func fixed(_ value: Double, decimals: Int) -> String {
    var scale = 1.0
    for _ in 0..<decimals { scale *= 10 }
    let scaled = Int((abs(value) * scale).rounded())
    let sign = value < 0 && scaled != 0 ? "-" : ""
    let whole = scaled / Int(scale)
    guard decimals > 0 else { return sign + "\(whole)" }
    let fraction = String(scaled % Int(scale))
    return sign + "\(whole)." + String(repeating: "0", count: decimals - fraction.count) + fraction
}
