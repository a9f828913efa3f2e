UPDATE notify.send_requests SET state = 'done', response = %(response)s WHERE id = %(id)s
