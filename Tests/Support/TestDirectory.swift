import Foundation

/// Where tests write files: one directory per test process, removed when the process exits,
/// so test runs do not pile up state directories in the system's temporary directory.
public enum TestDirectory {
    public static let root: String = {
        let root = FileManager.default.temporaryDirectory.appendingPathComponent("lifecycled-tests-\(getpid())").path
        try? FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
        atexit { try? FileManager.default.removeItem(atPath: TestDirectory.root) }
        return root
    }()

    /// A fresh path under `root` (not created), named after what it will hold.
    public static func path(_ name: String) -> String { "\(root)/\(name)-\(UUID().uuidString)" }
}
