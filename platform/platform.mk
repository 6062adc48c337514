# Host test of the platform helpers over the host implementation.
test_platform_SRCS   := $(PLAT_SRCS) $(PLAT_HOST_SRCS)
test_platform_LDLIBS := -lpthread
