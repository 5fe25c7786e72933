import Foundation
import Testing

@Suite("lifecycled demo")
struct DemoCommandTests {
    @Test("a 60 s demo fires every trigger of the playbook and exits 0")
    func sixtySeconds() throws {
        let result = try BinaryRunner.run(["demo", "--duration", "60", "--listen", "127.0.0.1:0"])
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.contains("not for production"))
        #expect(result.stdout.contains("every trigger of the playbook fired"), "\(result.stdout.suffix(1500))")
        #expect(result.stdout.contains("stages:"))
    }
}
