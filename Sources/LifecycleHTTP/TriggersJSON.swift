import Foundation
import LifecycleDaemon
import LifecycleEngine

/// `/v1/triggers`: per trigger and arm, fired, converted and the conversion rate, and the
/// uplift (treatment rate minus control rate) with its 95 % interval, or why there is none.
enum TriggersJSON {
    static func object(_ triggers: [StatusBoard.TriggerStatus]) -> [String: Any] {
        [
            "scope": "the partitions assigned to this instance, since each one's state began",
            "method": "difference of conversion rates, treatment minus control, with its 95 % interval by Newcombe's hybrid score method (Wilson intervals)",
            "min_fired_per_arm": Uplift.minimumFiredPerArm,
            "triggers": triggers.map(trigger),
        ]
    }

    private static func trigger(_ status: StatusBoard.TriggerStatus) -> [String: Any] {
        var object: [String: Any] = [
            "trigger": status.name,
            "reason": status.reason,
            "has_goal": status.hasGoal,
            "fired": status.totals.fired,
            "converted": status.totals.converted,
            "holdout": status.hasHoldout ? status.controlShare : NSNull(),
            "uplift": uplift(status),
        ]
        for arm in status.hasHoldout ? Arm.allCases : [] {
            let count = status.totals[arm]
            object[arm.rawValue] = ["fired": count.fired, "converted": count.converted, "conversion_rate": nullable(count.rate)]
        }
        return object
    }

    /// JSON null for nil.
    private static func nullable(_ value: Double?) -> Any { value.map { $0 as Any } ?? NSNull() }

    private static func uplift(_ status: StatusBoard.TriggerStatus) -> [String: Any] {
        guard status.hasHoldout else { return ["status": "no holdout"] }
        guard status.hasGoal else { return ["status": "no goal", "reason": "without a goal there are no conversions to compare"] }
        switch Uplift.of(status.totals) {
        case .notEnoughData(let reason):
            return ["status": "not enough data", "reason": reason]
        case .measured(let estimate):
            return [
                "status": "measured",
                "difference": estimate.difference,
                "ci95": [estimate.lower, estimate.upper],
                "relative_lift": nullable(estimate.relativeLift),
                "significant": estimate.isSignificant,
            ]
        }
    }
}
