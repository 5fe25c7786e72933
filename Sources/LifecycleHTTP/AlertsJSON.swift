import Foundation
import LifecycleEngine

/// `/v1/alerts`: every alert's state as of the last sample, with its thresholds as written
/// and times in epoch milliseconds; null where a field does not apply.
enum AlertsJSON {
    static func object(_ alerts: [AlertStatus]) -> [String: Any] {
        ["alerts": alerts.map(alert)]
    }

    private static func alert(_ status: AlertStatus) -> [String: Any] {
        [
            "name": status.name,
            "when": status.when,
            "state": status.state.rawValue,
            "level": nullable(status.level?.rawValue),
            "value": nullable(status.value),
            "threshold": nullable(status.threshold),
            "warn": nullable(status.warn?.description),
            "critical": nullable(status.critical?.description),
            "since": nullable(status.since),
            "reason": nullable(status.reason),
        ]
    }

    /// JSON null for nil.
    private static func nullable(_ value: Any?) -> Any { value ?? NSNull() }
}
