import Foundation
import LifecycleTestSupport

/// Runs the built `lifecycled` binary, as a user would, and captures what it prints.
struct BinaryRunner {
    struct Result {
        var status: Int32
        var stdout: String
        var stderr: String
        var stdoutData: Data
    }

    /// The binary sits next to the test bundle in the build directory.
    static let binary: URL = {
        let testExecutable = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        var directory = testExecutable.deletingLastPathComponent()
        while !FileManager.default.isExecutableFile(atPath: directory.appendingPathComponent("lifecycled").path),
              directory.path != "/" {
            directory.deleteLastPathComponent()
        }
        return directory.appendingPathComponent("lifecycled")
    }()

    static let repositoryRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    static func path(_ relative: String) -> String { repositoryRoot.appendingPathComponent(relative).path }

    /// Runs with `arguments`; `stdinChunks` are written one after another with `pause` between,
    /// and `afterChunk` is called with the process id and the chunk's index after each.
    /// With `shell`, the binary runs inside `bash -c SHELL`, where it is `"$0" "$@"`.
    /// `environment` is added to this process's.
    static func run(
        _ arguments: [String], stdinChunks: [Data] = [], pause: TimeInterval = 0, shell: String? = nil,
        environment: [String: String] = [:], afterChunk: (Int32, Int) -> Void = { _, _ in }
    ) throws -> Result {
        let process = Process()
        process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        if let shell {
            process.executableURL = URL(fileURLWithPath: "/bin/bash")
            process.arguments = ["-c", shell, binary.path] + arguments
        } else {
            process.executableURL = binary
            process.arguments = arguments
        }
        process.currentDirectoryURL = repositoryRoot
        let out = Pipe()
        let err = Pipe()
        let input = Pipe()
        process.standardOutput = out
        process.standardError = err
        process.standardInput = input
        try process.run()
        // Drain both pipes concurrently so a chatty child never blocks on a full pipe.
        let group = DispatchGroup()
        nonisolated(unsafe) var stdoutData = Data()
        nonisolated(unsafe) var stderrData = Data()
        DispatchQueue.global().async(group: group) { stdoutData = out.fileHandleForReading.readDataToEndOfFile() }
        DispatchQueue.global().async(group: group) { stderrData = err.fileHandleForReading.readDataToEndOfFile() }
        for (index, chunk) in stdinChunks.enumerated() {
            if index > 0 && pause > 0 { Thread.sleep(forTimeInterval: pause) }
            input.fileHandleForWriting.write(chunk)
            afterChunk(process.processIdentifier, index)
        }
        try input.fileHandleForWriting.close()
        process.waitUntilExit()
        group.wait()
        return Result(
            status: process.terminationStatus,
            stdout: String(decoding: stdoutData, as: UTF8.self),
            stderr: String(decoding: stderrData, as: UTF8.self),
            stdoutData: stdoutData)
    }

    /// A TCP port for a daemon's HTTP listener: below Linux's ephemeral range (32768 and up),
    /// where the mock brokers' and clients' own ports come from, and free when checked.
    static func freePort() -> Int {
        for _ in 0..<100 {
            let port = Int.random(in: 20_000..<32_000)
            let descriptor = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            let bound = withLoopbackAddress(port: port) { bind(descriptor, $0, $1) }
            close(descriptor)
            if bound == 0 { return port }
        }
        return Int.random(in: 20_000..<32_000)
    }

    /// Calls `body` with 127.0.0.1:`port` as a socket address and its length (for `bind` or `connect`).
    static func withLoopbackAddress<T>(port: Int, _ body: (UnsafePointer<sockaddr>, socklen_t) -> T) -> T {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { body($0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
    }

    static func temporaryFile(_ contents: String, name: String) throws -> String {
        let directory = URL(fileURLWithPath: TestDirectory.path("e2e"))
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let url = directory.appendingPathComponent(name)
        try contents.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }
}
