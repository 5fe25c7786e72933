import Foundation

/// How many cores this process may use: the CPUs its affinity mask allows (`taskset`,
/// systemd's `CPUAffinity=`), capped by a cgroup v2 CPU quota (a container limited to 2 CPUs
/// on a 64-core host gets 2). The default number of processing threads.
enum AvailableCores {
    static func count() -> Int {
        let allowed = affinity() ?? ProcessInfo.processInfo.activeProcessorCount
        return max(1, min(allowed, quota() ?? allowed))
    }

    /// `Cpus_allowed` in `/proc/self/status`: the affinity mask in hex, in 32-bit groups
    /// separated by commas.
    private static func affinity() -> Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("Cpus_allowed:") })
        else { return nil }
        let mask = line.dropFirst("Cpus_allowed:".count).filter { $0.isHexDigit }
        let count = mask.reduce(0) { $0 + (Int(String($1), radix: 16) ?? 0).nonzeroBitCount }
        return count > 0 ? count : nil
    }

    /// `/sys/fs/cgroup/cpu.max` holds "QUOTA PERIOD" or "max PERIOD".
    private static func quota() -> Int? {
        guard let text = try? String(contentsOfFile: "/sys/fs/cgroup/cpu.max", encoding: .utf8) else { return nil }
        let fields = text.split(whereSeparator: \.isWhitespace)
        guard fields.count == 2, let quota = Double(fields[0]), let period = Double(fields[1]), period > 0 else { return nil }
        return Int((quota / period).rounded(.up))
    }
}
