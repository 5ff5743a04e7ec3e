import ArgumentParser
import Conform
import Replay
import Report
import Trace
#if canImport(Glibc)
import Glibc
#endif

enum ConformDefaults: BackendDefaults {
    static let backend = BackendKind.engine
    static let profile = "latest"
    static let profileKeywords: Set<String> = ["auto", "all"]
}

struct ConformCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "conform",
        abstract: "Run the named conformance rules on the engine or on this machine's kernel.",
        discussion: Help.flow("""
        Each rule (corpora/rules/*.vfs) is a scenario with stated outcomes, written for a
        range of kernel behaviour; the variant for the profile under test runs on a fresh
        backend. Verdicts: PASS, FAIL (an outcome differed: the first divergence is shown),
        BROK (the check could not run), CONF (not applicable: other kernel versions, or no
        pinning device), WARN (matched, but the kernel modelled would crash on the way).

        --client TRACE judges a recorded program instead of a kernel: the client rules
        (client.*) say whether it used the interface as a live migration must (START
        before the first query, every mapping in every sync, the smallest page size, the
        final sync after every device left RUNNING, an UNMAP while tracking with its
        bitmap, ...), each PASS, FAIL with the event, or CONF when the trace holds nothing
        the rule is about.

        With no arguments: every rule on the engine's latest profile, as text.
        --profile all runs every preset and prints a rules x profiles matrix. --backend
        kernel runs on this machine's VFIO (root; --group/--device as for replay; rules
        with emulated groups need the vfiotrace_pin test device's group, else CONF) and
        picks each rule's variant from the kernel release.

        Examples:
          vfiotrace conform
          vfiotrace conform --profile all
          vfiotrace conform --rules 'repop.*' --format ktap
          vfiotrace conform --profile 5.8 --format junit -o conform-5.8.xml --shard 2/4
          vfiotrace conform --backend kernel --group /dev/vfio/12 --group /dev/vfio/20
          vfiotrace conform --client qemu-migration.vft --format junit -o client.xml

        Exit codes: 0 every rule PASS, CONF or WARN; 1 some FAIL; 2 some BROK, or trouble.
        """)
    )

    @OptionGroup var backend: BackendOptions<ConformDefaults>

    @OptionGroup var host: HostOption

    @Option(help: "Only rules whose ID matches this glob (e.g. 'pgsize.*').")
    var rules: String?

    @Option(help: "Output format.")
    var format: ReportFormat = .text

    @Option(name: .shortAndLong, help: "Write the report to this file instead of standard output (`-`: standard output).")
    var output: String?

    @Option(help: ArgumentHelp("Run only shard I of N (1-based), e.g. 2/4; the shards together run every rule once.", valueName: "I/N"))
    var shard: Shard?

    @Option(help: "The rule directory (default: corpora/rules, found from here or from the executable).", completion: .directory)
    var corpus: String?

    @Option(help: ArgumentHelp("Check a recorded program against the client rules instead (`-`: standard input).", valueName: "TRACE"),
            completion: .file(extensions: ["vft", "vfs"]))
    var client: String?

    @Option(help: "Colour the verdicts: auto (on a terminal, unless NO_COLOR is set or TERM=dumb), always, never.")
    var color: ColorChoice = .auto

    @OptionGroup var html: HTMLReportOptions

    @OptionGroup var progressOptions: ProgressOptions

    func validate() throws {
        if html.onStandardOutput && (output ?? "-") == "-" {
            throw ValidationError("--html - takes standard output: give the text report a file with -o")
        }
    }

    func run() throws {
        if let client { return try runClient(client) }
        let (dir, catalogue) = try loadRuleCatalogue(corpus)
        var selected = catalogue.select(rules)
        if let rules, selected.isEmpty { throw Failure.trouble("--rules \(rules): no rule matches (\(catalogue.rules.count) rules in \(dir))") }
        if let shard { selected = shard.select(selected) }
        let targets = try backend.conformTargets(host: try host.described() ?? HostModel())
        var runs: [TargetResults] = []
        // Rules × profiles: one meter over every target.
        var progress = progressOptions.meter(targets.count > 1 ? "conform \(targets.count) profiles" : "conform \(targets.first?.name ?? "")",
                                             unit: "rule runs", total: UInt64(selected.count * targets.count))
        var done: UInt64 = 0
        for t in targets {
            var results: [RuleResult] = []
            for rule in selected {
                let r = ConformRunner.run(rule, on: t)
                results.append(r)
                done += 1
                // On a real kernel each verdict goes to stderr at once, so a
                // hang or a crash shows which rule it was.
                if backend.kind == .kernel {
                    progress.finish()
                    printRaw("conform: \(r.verdict.rawValue) \(rule.id)\n", fd: 2)
                }
                progress.update(done)
            }
            runs.append(TargetResults(target: t.name, results: results))
        }
        progress.finish()
        let report = Reporter.render(runs, format: format, color: format == .text && ((output ?? "-") == "-" ? color.enabled(forFD: 1) : color == .always))
        if let output, output != "-" {
            try writeTextFile(output, report)
            printRaw(runs.map(\.summary).joined(separator: "\n") + "\n", fd: 1)
        } else {
            var out = OutputBuffer()
            for line in report.split(separator: "\n", omittingEmptySubsequences: false).dropLast() { out.line(String(line)) }
            out.flush()
        }
        try writePage(runs, facts: [("rules", dir), ("backend", backend.kind.rawValue)])
        let all = runs.flatMap(\.results)
        if all.contains(where: { $0.verdict == .brok }) { throw ExitCode(2) }
        if all.contains(where: { $0.verdict == .fail }) { throw ExitCode(1) }
    }
}

extension ConformCommand {
    /// `--client TRACE`: the client rules on one recorded program.
    func runClient(_ path: String) throws {
        if backend.kind != .engine || shard != nil || corpus != nil {
            throw ValidationError("--client judges a recording: it takes no --backend, --shard or --corpus")
        }
        let events = try readAllEvents(path)
        let results = ClientRules.run(events, backend: "client:\(path == "-" ? "standard input" : path)", only: rules)
        if let rules, results.isEmpty {
            throw Failure.trouble("--rules \(rules): no client rule matches (\(ClientRules.all.map(\.rule.id).joined(separator: ", ")))")
        }
        let run = TargetResults(target: "client:\(path)", results: results)
        let report = Reporter.render([run], format: format, color: format == .text && ((output ?? "-") == "-" ? color.enabled(forFD: 1) : color == .always))
        if let output, output != "-" {
            try writeTextFile(output, report)
            printRaw(run.summary + "\n", fd: 1)
        } else {
            printRaw(report, fd: 1)
        }
        try writePage([run], facts: [("recording", path)])
        if results.contains(where: { $0.verdict == .brok }) { throw ExitCode(2) }
        if results.contains(where: { $0.verdict == .fail }) { throw ExitCode(1) }
    }

    /// `--html`: the verdict matrix, each verdict but PASS linked to its
    /// card (FAIL with its first divergent event drawn).
    func writePage(_ runs: [TargetResults], facts: [(String, String)]) throws {
        guard html.path != nil else { return }
        var page = HTMLReport(title: "vfiotrace conform", cardLimit: 1000)
        page.facts = facts
        page.cardHeading = "Failures and warnings"
        page.addMatrix(runs)
        page.summary = runs.map(\.summary)
        try html.write(page, inputs: [client, corpus].compactMap { $0 })
    }
}

/// The rule directory (`--corpus`, or found) and its catalogue.
func loadRuleCatalogue(_ corpus: String?) throws -> (String, Catalogue) {
    do {
        let dir = try RepositoryLocation.ruleDirectory(given: corpus)
        return (dir, try Catalogue(directory: dir))
    } catch {
        throw Failure.trouble("\(error)")
    }
}

/// Writes a whole text file: beside it, then in its place.
func writeTextFile(_ path: String, _ s: String, inputs: [String] = []) throws {
    let out = try beginOutput(path, inputs: inputs)
    let fd: Int32
    do { fd = try out.openForWriting() } catch {
        out.abandon()
        throw Failure.trouble("\(error)")
    }
    let failed = Array(s.utf8).withUnsafeBytes { Posix.writeAll(fd, $0) }
    close(fd)
    if let e = failed {
        out.abandon()
        throw Failure.trouble("\(path): \(Posix.describe(e))")
    }
    try commitOutput(out)
}
