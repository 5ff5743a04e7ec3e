#include "CVFIO.h"
#include <errno.h>
#include <sys/ioctl.h>

int cvfio_ioctl(int fd, unsigned long request, void *arg, int *err)
{
	int ret;

	errno = 0;
	ret = ioctl(fd, request, arg);
	*err = ret < 0 ? errno : 0;
	return ret;
}
