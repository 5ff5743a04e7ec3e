import CRecord
import Synchronization
import Trace
#if canImport(Glibc)
import Glibc
#endif

/// An open or close a tracee entered, as the notification thread saw it,
/// for the recorder's loop to apply in order.
enum NotifiedCall: Sendable, Equatable {
    /// A close of `fd` entered; `vfioTarget` is what the fd named then when
    /// it was a VFIO fd (the close is then recorded).
    case close(tid: pid_t, fd: Int32, vfioTarget: String?, time: UInt64)
    /// An open of a `/dev/vfio/` node, done for the tracee, and its result.
    case open(tid: pid_t, path: String, result: CallResult, time: UInt64)
    /// An open of a `/dev/vfio/` node left to the kernel unrecorded, and why.
    case unrecordedOpen(tid: pid_t, path: String, why: String, time: UInt64)

    var tid: pid_t {
        switch self {
        case .close(let t, _, _, _), .open(let t, _, _, _), .unrecordedOpen(let t, _, _, _): t
        }
    }
}

/// Serves the seccomp user notifications of the program's open, openat and
/// close (see `install_filter` in the C shim) on a thread of its own.
///
/// Why not ptrace stops, as for the VFIO ioctls: a tracee whose tracer is
/// gone gets ENOSYS from every SECCOMP_RET_TRACE syscall, so a recorder
/// killed with SIGKILL used to leave the program unable to open or close
/// any file (a shell was seen blocked for ever, holding both ends of a
/// pipe). Notifications outlive the recorder: a guardian process holds a
/// copy of the listener and answers them once the recorder is gone.
///
/// A close is answered "continue" after noting, at its entry, whether the
/// fd is a VFIO fd (the fd is still open: the thread waits for the answer).
/// Its result is not seen; a close of an open VFIO fd returns 0 (VFIO's
/// files have no `flush`, so `filp_close` has nothing to fail), which is
/// what is recorded. An open of a `/dev/vfio/` path is done by the
/// recorder for the tracee (same path, flags and mode) and the file is
/// installed in the tracee as the syscall's result
/// (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SEND, Linux 5.14; on
/// 5.9 to 5.13, such as Debian's 5.10, the fd is added and the notification
/// answered with its number in two steps), so
/// its fd or errno is known exactly. That is the tracee's own open only
/// when both see the same files with the same rights: a tracee with
/// another root directory or other credentials opens for itself, and the
/// trace says so in a marker.
///
/// Every other open and close is answered "continue" at once.
final class NotificationServer: @unchecked Sendable {
    let listener: Int32
    /// Where the last received id is kept for the guardian (shared memory).
    private let received: UnsafeMutablePointer<UInt64>?
    /// What was seen, in order. Each notification is handled and answered
    /// holding this lock, so the loop, which takes it to drain, never sees
    /// a stop the answer allowed before the call's own entry.
    private let seen = Mutex<[NotifiedCall]>([])
    private let stopping = Atomic<Bool>(false)
    private var thread: pthread_t?
    /// The recorder's own root and identity, to compare a tracee's with.
    private let view: String

    init(listener: Int32, received: UnsafeMutablePointer<UInt64>?) {
        self.listener = listener
        self.received = received
        view = Self.view(of: "self")
    }

    /// Starts the serving thread.
    func start() {
        let me = Unmanaged.passRetained(self).toOpaque()
        var t = pthread_t()
        let r = pthread_create(&t, nil, { arg in
            let server = Unmanaged<NotificationServer>.fromOpaque(arg!).takeRetainedValue()
            server.serve()
            return nil
        }, me)
        if r == 0 { thread = t } else { Unmanaged<NotificationServer>.fromOpaque(me).release() }
    }

    /// Stops the thread (the program is gone) and waits for it.
    func stop() {
        stopping.store(true, ordering: .releasing)
        if let t = thread { pthread_join(t, nil) }
        thread = nil
    }

    /// What was seen since the last call, in order.
    func drain() -> [NotifiedCall] {
        seen.withLock { q in
            defer { q.removeAll(keepingCapacity: true) }
            return q
        }
    }

    private func serve() {
        var n = crec_notif()
        while true {
            let r = crec_notif_recv(listener, 250, received, &n)
            if r < 0 { return }
            if r == 0 {
                if stopping.load(ordering: .acquiring) { return }
                continue
            }
            seen.withLock { q in handle(n, into: &q) }
        }
    }

    private func handle(_ n: crec_notif, into q: inout [NotifiedCall]) {
        let tid = pid_t(bitPattern: n.pid)
        let mem = TraceeMemory(pid: tid)
        switch n.nr {
        case crec_nr_close:
            let fd = Int32(truncatingIfNeeded: n.args.0)
            let target = mem.fdTarget(fd)
            let vfio = target.flatMap(TraceeMemory.vfioKind(ofTarget:)) != nil ? target : nil
            q.append(.close(tid: tid, fd: fd, vfioTarget: vfio, time: RecorderClock.now()))
            _ = crec_notif_continue(listener, n.id)
        case crec_nr_open, crec_nr_openat:
            let plain = n.nr == crec_nr_open
            let time = RecorderClock.now()
            // The path is read before checking that the call still waits
            // (its memory may have been another process's by then).
            guard let path = mem.string(plain ? n.args.0 : n.args.1), path.hasPrefix("/dev/vfio/"),
                  crec_notif_id_valid(listener, n.id) == 1 else {
                _ = crec_notif_continue(listener, n.id)
                return
            }
            let flags = Int32(truncatingIfNeeded: plain ? n.args.1 : n.args.2)
            let mode = mode_t(truncatingIfNeeded: plain ? n.args.2 : n.args.3)
            let theirs = Self.view(of: "\(tid)")
            guard theirs == view else {
                q.append(.unrecordedOpen(tid: tid, path: path, why: "the program has another root directory or other credentials than the recorder, so it opened it itself", time: time))
                _ = crec_notif_continue(listener, n.id)
                return
            }
            let fd = open(path, flags | O_CLOEXEC, mode)
            guard fd >= 0 else {
                let e = errno
                q.append(.open(tid: tid, path: path, result: .error(e), time: time))
                _ = crec_notif_fail(listener, n.id, e)
                return
            }
            let installed = crec_notif_addfd_send(listener, n.id, fd, flags & O_CLOEXEC != 0 ? 1 : 0)
            let e = errno
            close(fd)
            if installed >= 0 {
                q.append(.open(tid: tid, path: path, result: .ok(Int64(installed)), time: time))
            } else if e != ENOENT {
                // Not installed (EMFILE: the tracee has no free fd): the
                // open fails as the kernel would have failed it.
                q.append(.open(tid: tid, path: path, result: .error(e), time: time))
                _ = crec_notif_fail(listener, n.id, e)
            }
            // ENOENT: the thread was killed while waiting; nothing happened.
        default:
            _ = crec_notif_continue(listener, n.id)
        }
    }

    /// A process's root directory and credentials, as far as opening a
    /// device node depends on them.
    static func view(of pid: String) -> String {
        let root = Posix.readLink("/proc/\(pid)/root") ?? "?"
        let status = Posix.readSmallFile("/proc/\(pid)/status") ?? ""
        let ids = status.split(separator: "\n").filter { $0.hasPrefix("Uid:") || $0.hasPrefix("Gid:") || $0.hasPrefix("Groups:") }
        return ([root] + ids.map(String.init)).joined(separator: "|")
    }
}
