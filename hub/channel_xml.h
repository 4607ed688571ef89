/* The guestd port's socket path in a libvirt domain's live XML. */
#ifndef GUESTD_HUB_CHANNEL_XML_H
#define GUESTD_HUB_CHANNEL_XML_H

#include <stddef.h>

#define GD_GUESTD_CHANNEL "org.guestd.agent.0"

/* Finds <devices><channel type='unix'> whose <target type='virtio'
 * name='org.guestd.agent.0'/> and copies its <source path=...> into path.
 * 0; -ENOENT when the domain has no such channel (or it is not a unix
 * socket); -EINVAL when the XML does not parse; -ENAMETOOLONG. */
int gd_channel_xml_path(const char *xml, size_t len, char *path, size_t pathlen);

#endif
