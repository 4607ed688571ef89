/* Tests for hub/channel_xml: the guestd channel's socket path in libvirt's
 * live domain XML (as `virsh dumpxml` prints it). */
#include <check.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hub/channel_xml.h"

static char path[256];

static int parse(const char *xml)
{
    path[0] = '\0';
    return gd_channel_xml_path(xml, strlen(xml), path, sizeof(path));
}

/* A running domain with qemu-ga's channel before guestd's, a spice channel
 * (no path) and a serial console. */
static const char live_xml[] =
    "<domain type='kvm' id='3'>\n"
    "  <name>web-1</name>\n"
    "  <devices>\n"
    "    <serial type='pty'><source path='/dev/pts/3'/><target port='0'/></serial>\n"
    "    <channel type='unix'>\n"
    "      <source mode='bind' path='/var/lib/libvirt/qemu/channel/target/"
    "domain-3-web-1/org.qemu.guest_agent.0'/>\n"
    "      <target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>\n"
    "      <alias name='channel0'/>\n"
    "    </channel>\n"
    "    <channel type='spicevmc'>\n"
    "      <target type='virtio' name='com.redhat.spice.0'/>\n"
    "    </channel>\n"
    "    <channel type='unix'>\n"
    "      <source mode='bind' path='/run/libvirt/qemu/channel/3-web-1/org.guestd.agent.0'/>\n"
    "      <target type='virtio' name='org.guestd.agent.0' state='disconnected'/>\n"
    "      <alias name='channel2'/>\n"
    "      <address type='virtio-serial' controller='0' bus='0' port='3'/>\n"
    "    </channel>\n"
    "  </devices>\n"
    "</domain>\n";

START_TEST(finds_guestd_channel_among_others)
{
    ck_assert_int_eq(parse(live_xml), 0);
    ck_assert_str_eq(path, "/run/libvirt/qemu/channel/3-web-1/org.guestd.agent.0");
}
END_TEST

START_TEST(entities_and_double_quotes)
{
    ck_assert_int_eq(parse("<domain><devices><channel type=\"unix\">"
                           "<source mode=\"bind\" path=\"/run/a&amp;b &apos;c&apos;.sock\"/>"
                           "<target type=\"virtio\" name=\"org.guestd.agent.0\"/>"
                           "</channel></devices></domain>"),
                     0);
    ck_assert_str_eq(path, "/run/a&b 'c'.sock");
}
END_TEST

START_TEST(no_channel_is_enoent)
{
    ck_assert_int_eq(parse("<domain><name>x</name><devices/></domain>"), -ENOENT);
    /* qemu-ga's channel alone is not ours. */
    ck_assert_int_eq(parse("<domain><devices><channel type='unix'><source path='/x'/>"
                           "<target type='virtio' name='org.qemu.guest_agent.0'/>"
                           "</channel></devices></domain>"),
                     -ENOENT);
    /* Our name on a pty chardev: no socket the hub could connect to. */
    ck_assert_int_eq(parse("<domain><devices><channel type='pty'><source path='/dev/pts/4'/>"
                           "<target type='virtio' name='org.guestd.agent.0'/>"
                           "</channel></devices></domain>"),
                     -ENOENT);
    /* A source without a path. */
    ck_assert_int_eq(parse("<domain><devices><channel type='unix'><source mode='bind'/>"
                           "<target type='virtio' name='org.guestd.agent.0'/>"
                           "</channel></devices></domain>"),
                     -ENOENT);
    /* The name elsewhere than a channel's target. */
    ck_assert_int_eq(parse("<domain><devices><console type='unix'><source path='/x'/>"
                           "<target type='virtio' name='org.guestd.agent.0'/>"
                           "</console></devices></domain>"),
                     -ENOENT);
}
END_TEST

START_TEST(bad_xml_is_einval)
{
    ck_assert_int_eq(parse("<domain><devices><channel"), -EINVAL);
    ck_assert_int_eq(parse(""), -EINVAL);
}
END_TEST

START_TEST(long_path_is_enametoolong)
{
    char xml[1024], long_path[400];
    memset(long_path, 'a', sizeof(long_path) - 1);
    long_path[0] = '/';
    long_path[sizeof(long_path) - 1] = '\0';
    snprintf(xml, sizeof(xml),
             "<domain><devices><channel type='unix'><source path='%s'/>"
             "<target type='virtio' name='org.guestd.agent.0'/></channel></devices></domain>",
             long_path);
    ck_assert_int_eq(parse(xml), -ENAMETOOLONG);
}
END_TEST

static Suite *suite(void)
{
    Suite *s = suite_create("hub_channel_xml");
    TCase *tc = tcase_create("channel_xml");
    tcase_add_test(tc, finds_guestd_channel_among_others);
    tcase_add_test(tc, entities_and_double_quotes);
    tcase_add_test(tc, no_channel_is_enoent);
    tcase_add_test(tc, bad_xml_is_einval);
    tcase_add_test(tc, long_path_is_enametoolong);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed ? EXIT_FAILURE : EXIT_SUCCESS;
}
