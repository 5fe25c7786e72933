import LifecycleEngine

/// Writes alert changes as compact JSON with a fixed key order, the same bytes for the same
/// change (the alerts topic, the log and replay's `--alerts` file):
/// `{"alert":…,"state":…,"level":…,"value":…,"threshold":…,"since":…,"at":…,"reason":…,"config_version":…}`,
/// with null for a level, value, threshold or reason there is not. No trailing newline.
public struct AlertEncoder: Sendable {
    public init() {}

    public func encode(_ change: AlertChange, configVersion: String, into out: inout [UInt8]) {
        out.append(contentsOf: #"{"alert":"#.utf8)
        TriggerEncoder.string(change.alert, &out)
        out.append(contentsOf: #","state":"#.utf8)
        TriggerEncoder.string(change.state.rawValue, &out)
        out.append(contentsOf: #","level":"#.utf8)
        Self.string(change.level?.rawValue, &out)
        out.append(contentsOf: #","value":"#.utf8)
        Self.number(change.value, &out)
        out.append(contentsOf: #","threshold":"#.utf8)
        Self.number(change.threshold, &out)
        out.append(contentsOf: #","since":"#.utf8)
        TriggerEncoder.integer(change.since, &out)
        out.append(contentsOf: #","at":"#.utf8)
        TriggerEncoder.integer(change.at, &out)
        out.append(contentsOf: #","reason":"#.utf8)
        Self.string(change.reason, &out)
        out.append(contentsOf: #","config_version":"#.utf8)
        TriggerEncoder.string(configVersion, &out)
        out.append(UInt8(ascii: "}"))
    }

    private static func string(_ value: String?, _ out: inout [UInt8]) {
        if let value { TriggerEncoder.string(value, &out) } else { out.append(contentsOf: "null".utf8) }
    }

    private static func number(_ value: Double?, _ out: inout [UInt8]) {
        if let value { TriggerEncoder.number(value, &out) } else { out.append(contentsOf: "null".utf8) }
    }
}
