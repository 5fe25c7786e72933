import Foundation
import Testing

/// systemd's own checks of the unit file, run offline (no systemd needed).
@Suite("systemd unit", .enabled(if: FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze")))
struct SystemdUnitTests {
    /// The unit with its commands pointed at the built binary, so `verify` can check them.
    func unitForThisBuild() throws -> String {
        let text = try String(contentsOfFile: BinaryRunner.path("systemd/lifecycled.service"), encoding: .utf8)
            .replacingOccurrences(of: "/usr/local/bin/lifecycled", with: BinaryRunner.binary.path)
        return try BinaryRunner.temporaryFile(text, name: "lifecycled.service")
    }

    func analyze(_ arguments: [String]) throws -> (status: Int32, output: String) {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/systemd-analyze")
        process.arguments = arguments
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        return (process.terminationStatus, String(decoding: data, as: UTF8.self))
    }

    @Test("systemd-analyze verify finds nothing wrong")
    func verify() throws {
        let result = try analyze(["verify", try unitForThisBuild()])
        #expect(result.status == 0, "\(result.output)")
        #expect(!result.output.contains("lifecycled.service:"), "\(result.output)")
    }

    @Test("the hardened unit's exposure score is at most 2.0")
    func exposure() throws {
        let result = try analyze(["security", "--offline=true", try unitForThisBuild()])
        let line = try #require(result.output.split(separator: "\n").first { $0.contains("Overall exposure level") })
        let score = try #require(line.split(separator: " ").compactMap { Double($0) }.first)
        #expect(score <= 2.0, "\(line)")
    }
}
