import Foundation
import Testing

/// `vfiotrace host` and `--host FILE`, as a user runs them.
@Suite("vfiotrace host and --host")
struct HostCLITests {
    /// A container opened as TYPE1_NESTING with an IOMMU-backed group: the
    /// lab's VT-d refuses it (EINVAL), a host with nesting takes it.
    static let nestingTrace = """
    !mode scenario
    open /dev/vfio/vfio -> 3
    open /dev/vfio/12 -> 4
    group_set_container container=3 kind=iommu -> ok
    set_iommu TYPE1_NESTING -> ok
    map_dma iova=0x0 size=8K -> ok
    """

    static func write(_ text: String, _ name: String) throws -> String {
        let path = CLI.tempDir() + "/" + name
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        return path
    }

    @Test("`host` prints the default host; `host --check` reads it back and prints the same keys")
    func printsAndChecks() throws {
        let printed = try CLI.run(["host"])
        #expect(printed.code == 0, "\(printed.err)")
        #expect(printed.out.contains("\ndomain_pgsizes 0x40201000\n") && printed.out.contains("\ndomain_nesting no\n"), "\(printed.out)")
        let file = try Self.write(printed.out, "lab.host")
        let checked = try CLI.run(["host", "--check", file])
        #expect(checked.code == 0, "\(checked.err)")
        let body = { (s: String) in s.split(separator: "\n").dropFirst().joined(separator: "\n") }
        #expect(body(checked.out) == body(printed.out))
    }

    @Test("`host TRACE` names the traits the trace states")
    func fromTrace() throws {
        let trace = try Self.write(Self.nestingTrace, "nesting.vfs")
        let r = try CLI.run(["host", trace])
        #expect(r.code == 0, "\(r.err)")
        #expect(r.out.hasPrefix("# from \(trace): nesting yes") && r.out.contains("\ndomain_nesting yes\n"), "\(r.out)")
    }

    @Test("replay: the trace's own host by default, --default-host the lab's, --host FILE the file's")
    func replayHost() throws {
        let trace = try Self.write(Self.nestingTrace, "nesting.vfs")
        let stated = try CLI.run(["replay", trace])
        #expect(stated.code == 0 && stated.out.contains("host from the trace: nesting yes"), "\(stated.out)\(stated.err)")
        let lab = try CLI.run(["replay", trace, "--default-host"])
        #expect(lab.code == 1 && lab.out.contains("expected ok, got EINVAL"), "\(lab.out)\(lab.err)")
        let withNesting = try Self.write("domain_nesting yes\n", "arm.host")
        let given = try CLI.run(["replay", trace, "--host", withNesting])
        #expect(given.code == 0 && given.out.contains("host from \(withNesting)"), "\(given.out)\(given.err)")
        let without = try Self.write("domain_nesting no\n", "vtd.host")
        #expect(try CLI.run(["replay", trace, "--host", without]).code == 1)
        let both = try CLI.run(["replay", trace, "--host", without, "--default-host"])
        #expect(both.code == 2 && both.err.contains("not both"), "\(both.err)")
    }

    @Test("bisect-check runs the engine on the given host")
    func bisectHost() throws {
        let trace = try Self.write(Self.nestingTrace, "nesting.vfs")
        let withNesting = try Self.write("domain_nesting yes\n", "arm.host")
        // (bisect compares profiles with each other on one host, so the host
        // cannot show in its verdict; its --host is covered by badFile.)
        let good = CLI.tempDir() + "/good.vft"
        #expect(try CLI.run(["replay", trace, "--host", withNesting, "-o", good]).code == 0)
        #expect(try CLI.run(["bisect-check", trace, "--expect", good, "--backend", "engine", "--host", withNesting]).code == 0)
        let bad = try CLI.run(["bisect-check", trace, "--expect", good, "--backend", "engine", "--default-host"])
        #expect(bad.code == 1 && bad.out.contains("EINVAL"), "\(bad.out)\(bad.err)")
    }

    @Test("a bad host file is exit 2 (bisect-check: 125) naming the file, line and column, for every command that takes one",
          arguments: [["replay", "TRACE"], ["conform"], ["fuzz", "--against", "latest", "--streams", "1"],
                      ["bisect", "TRACE"], ["bisect-check", "TRACE", "--expect", "TRACE", "--backend", "engine"], ["host", "--check"]])
    func badFile(_ command: [String]) throws {
        let trace = try Self.write(Self.nestingTrace, "nesting.vfs")
        let host = try Self.write("page_size 4K\ndomain_pgsizes zero\n", "bad.host")
        var args = command.map { $0 == "TRACE" ? trace : $0 }
        args += command == ["host", "--check"] ? [host] : ["--host", host]
        let r = try CLI.run(args)
        // bisect-check speaks git bisect run's language: trouble is 125, skip.
        #expect(r.code == (command[0] == "bisect-check" ? 125 : 2), "\(args): \(r.out)\(r.err)")
        #expect(r.err.contains("\(host):2:16: domain_pgsizes: zero is not a number"), "\(r.err)")
    }

    @Test("a host file that is not one: missing, over 1 MiB, not UTF-8")
    func notAHostFile() throws {
        let missing = try CLI.run(["host", "--check", "/nonexistent/h"])
        #expect(missing.code == 2 && missing.err.contains("/nonexistent/h"), "\(missing.err)")
        let big = CLI.tempDir() + "/big.host"
        try Data(repeating: 0x23, count: (1 << 20) + 1).write(to: URL(fileURLWithPath: big))
        let r = try CLI.run(["host", "--check", big])
        #expect(r.code == 2 && r.err.contains("over 1 MiB"), "\(r.err)")
        let binary = CLI.tempDir() + "/bin.host"
        try Data([0x70, 0xff, 0xfe, 0x0a]).write(to: URL(fileURLWithPath: binary))
        let b = try CLI.run(["host", "--check", binary])
        #expect(b.code == 2 && b.err.contains(binary), "\(b.err)")
    }
}
