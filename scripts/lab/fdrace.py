#!/usr/bin/env python3
# The fd-reuse race of the lab lane (scripts/lab-lane-guest): one thread
# calls VFIO_CHECK_EXTENSION on an fd while the main thread closes it and
# reopens the number as /dev/null and /dev/vfio/vfio by turns. Recorded with
# `vfiotrace record`, every open must be there and no call that reached
# /dev/null may be recorded as a VFIO call.
import fcntl, os, threading
fd = os.open("/dev/vfio/vfio", os.O_RDWR)
done = False
def call():
    while not done:
        try:
            fcntl.ioctl(fd, 0x3B65, 3)  # VFIO_CHECK_EXTENSION(TYPE1v2)
        except OSError:
            pass
t = threading.Thread(target=call)
t.start()
for i in range(300):
    os.close(fd)
    assert os.open("/dev/null" if i % 2 == 0 else "/dev/vfio/vfio", os.O_RDWR) == fd
done = True
t.join()
